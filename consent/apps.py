from __future__ import annotations

from django.apps import AppConfig


class ConsentConfig(AppConfig):
    name = "consent"
    verbose_name = "Citizens and consent"

    def ready(self) -> None:
        # Outbox handlers register themselves on import: every process knows every topic.
        from consent import notifications  # noqa: F401
