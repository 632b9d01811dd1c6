from __future__ import annotations

from django.apps import AppConfig


class SharingConfig(AppConfig):
    name = "sharing"
    verbose_name = "Data sharing"

    def ready(self) -> None:
        # Outbox handlers register themselves on import.
        from sharing import handlers  # noqa: F401
