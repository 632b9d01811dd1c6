"""Run the scheduled jobs in this process: the demo's stand-in for celery beat and a worker."""

from __future__ import annotations

import signal
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from broker.celery import app


class Command(BaseCommand):
    help = "Run CELERY_BEAT_SCHEDULE's jobs in-process, for a demo with no Redis."

    def handle(self, *args: Any, **options: Any) -> None:
        running = True

        def stop(signum: int, frame: object) -> None:
            nonlocal running
            running = False

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        app.loader.import_default_modules()  # registers every app's tasks
        entries: dict[str, dict[str, Any]] = settings.CELERY_BEAT_SCHEDULE
        schedule = {str(entry["task"]): float(entry["schedule"]) for entry in entries.values()}
        due = dict.fromkeys(schedule, 0.0)
        self.stdout.write(f"scheduler: running {', '.join(sorted(schedule))} in-process")
        while running:
            now = time.monotonic()
            for name, interval in schedule.items():
                if now >= due[name]:
                    due[name] = now + interval
                    try:
                        app.tasks[name].apply(throw=True)
                    except Exception as exc:  # one failing job must not stop the others
                        self.stderr.write(f"scheduler: {name} failed: {exc!r}")
            time.sleep(0.2)
