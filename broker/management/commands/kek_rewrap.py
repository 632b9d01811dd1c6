"""Re-seal every key under TIERS_KEK after a KEK change (TIERS_KEK_PREVIOUS names the old one)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from broker.kek import KekMismatch, rewrap


class Command(BaseCommand):
    help = "Re-seal every sealed key under TIERS_KEK; TIERS_KEK_PREVIOUS is the KEK being replaced."

    def handle(self, *args: Any, **options: Any) -> None:
        previous = settings.TIERS_KEK_PREVIOUS
        if previous is None:
            raise CommandError("Set TIERS_KEK_PREVIOUS to the KEK being replaced (and TIERS_KEK to the new one).")
        try:
            moved = rewrap(previous=previous)
        except KekMismatch as exc:
            raise CommandError(f"Nothing changed: {exc}.") from exc
        summary = ", ".join(f"{count} {name}" for name, count in moved.items())
        self.stdout.write(f"Re-sealed under TIERS_KEK: {summary}. Remove TIERS_KEK_PREVIOUS now.")
