"""Sequence pending audit entries now (the scheduler does it every second)."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from broker.audit import sequencer


class Command(BaseCommand):
    help = "Give pending audit entries their leaf indexes and sign a checkpoint."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--loop", action="store_true", help="keep sequencing every --interval seconds")
        parser.add_argument("--interval", type=float, default=1.0)

    def handle(self, *args: Any, **options: Any) -> None:
        while True:
            count = sequencer.sequence()
            if count or not options["loop"]:
                self.stdout.write(f"sequenced {count} entries")
            if not options["loop"]:
                return
            time.sleep(options["interval"])
