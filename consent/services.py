"""State changes of citizens' accounts: one transaction each."""

from __future__ import annotations

from django.db import transaction

from broker.models import User
from consent.models import CitizenProfile


def citizen_register(*, username: str, email: str, password: str, display_name: str = "", language: str = "en") -> User:
    """Create a citizen's account with its profile."""
    with transaction.atomic():
        user = User.objects.create_user(username=username, email=email, password=password)
        CitizenProfile.objects.create(user=user, display_name=display_name, preferred_language=language)
        return user
