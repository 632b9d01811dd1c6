"""Citizens, as the consent app knows them."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class CitizenProfile(models.Model):
    """Marks a user as a citizen (a data subject) and keeps the little Tiers needs about them."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="citizen_profile")
    display_name = models.CharField(max_length=150, blank=True)
    preferred_language = models.CharField(max_length=8, choices=settings.LANGUAGES, default=settings.LANGUAGE_CODE)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.display_name or str(self.user)
