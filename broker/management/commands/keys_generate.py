"""Make sure the broker has an active key of each purpose, and print their kids."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from broker import keys
from broker.models import SigningKey


class Command(BaseCommand):
    help = "Generate the active JWS and note signing keys if missing; print their kids."

    def handle(self, *args: Any, **options: Any) -> None:
        for purpose in SigningKey.Purpose:
            existed = SigningKey.objects.filter(purpose=purpose, state=SigningKey.State.ACTIVE).exists()
            key = keys.active_key(purpose)
            self.stdout.write(f"{purpose.value} {key.algorithm} {key.kid} ({'kept' if existed else 'created'})")
