"""Retire the active signing key of one purpose and make a new one active."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from broker import keys
from broker.models import SigningKey


class Command(BaseCommand):
    help = "Rotate the JWS or note signing key; the old one stays published for verification."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--purpose", required=True, choices=SigningKey.Purpose.values)

    def handle(self, *args: Any, **options: Any) -> None:
        purpose = options["purpose"]
        old = SigningKey.objects.filter(purpose=purpose, state=SigningKey.State.ACTIVE).first()
        new = keys.key_rotate(actor=None, purpose=purpose)
        self.stdout.write(f"{purpose} retired {old.kid if old else '(none)'}")
        self.stdout.write(f"{purpose} active {new.kid}")
