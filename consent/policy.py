"""Who may reach the citizen's side of Tiers: the one place the consent app decides it.

A citizen reaches only their own links, consents and receipts; anyone else's
answer 404, whatever the id, so that existence does not leak.
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission

from broker.models import User
from consent.models import CitizenProfile


def is_citizen(user: Any) -> bool:
    """A logged-in, active user with a citizen profile."""
    if not isinstance(user, User) or not user.is_active:
        return False
    return CitizenProfile.objects.filter(user=user).exists()


class IsCitizen(BasePermission):
    """DRF permission: the caller is a citizen (querysets then scope every object to them)."""

    message = "This is for citizens, logged in to the portal."

    def has_permission(self, request: Any, view: Any) -> bool:
        return is_citizen(request.user)
