"""Who may reach the citizen's side of Tiers: the one place the consent app decides it."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser

from broker.models import User
from consent.models import CitizenProfile


def is_citizen(user: User | AnonymousUser) -> bool:
    """A logged-in, active user with a citizen profile."""
    if not isinstance(user, User) or not user.is_active:
        return False
    return CitizenProfile.objects.filter(user=user).exists()
