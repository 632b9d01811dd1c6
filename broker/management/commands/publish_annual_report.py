"""Sign and publish the Art. 20(2) annual activity report of a year, once and for good."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from broker.dga import reports
from broker.errors import TiersError
from broker.models import User


class Command(BaseCommand):
    help = "Publish the annual activity report of a year that is over (--now: the current year, for the demo)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("year", type=int)
        parser.add_argument("--now", action="store_true", help="allow the current year, which is not over")
        parser.add_argument("--operator", help="username of the operator who publishes (default: the first one)")

    def handle(self, *args: Any, **options: Any) -> None:
        operator = self._operator(options["operator"])
        try:
            report = reports.annual_report_publish(actor=operator, year=options["year"], allow_current=options["now"])
        except TiersError as error:
            raise CommandError(error.detail) from error
        self.stdout.write(f"Published the {report.year} report as {operator.username}: sha256 {report.sha256}")

    def _operator(self, username: str | None) -> User:
        operators = User.objects.filter(is_staff=True, is_active=True).order_by("pk")
        found = operators.filter(username=username).first() if username else operators.first()
        if found is None:
            raise CommandError(f"No active operator {username or ''}".rstrip() + "; name one with --operator.")
        return found
