from __future__ import annotations

from django.apps import AppConfig


class BrokerConfig(AppConfig):
    name = "broker"
    verbose_name = "Tiers trust core"

    def ready(self) -> None:
        # Outbox handlers register themselves on import.
        from broker import handlers  # noqa: F401
