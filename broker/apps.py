from __future__ import annotations

from django.apps import AppConfig


class BrokerConfig(AppConfig):
    name = "broker"
    verbose_name = "Tiers trust core"

    def ready(self) -> None:
        # Outbox handlers and the schema's field extensions register themselves on import.
        from broker import api_schema, handlers  # noqa: F401
        from broker.api_base import refuse_numbers_as_text

        refuse_numbers_as_text()
