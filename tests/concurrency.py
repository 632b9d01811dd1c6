"""Running a job twice at once, as two scheduler ticks or two workers would."""

from __future__ import annotations

import threading
from collections.abc import Callable

from django.db import connection


def both_at_once(job: Callable[[], int]) -> list[int]:
    """Run the job in two threads, each on its own database connection, started together."""
    start = threading.Barrier(2)
    counts: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            start.wait()
            counts.append(job())
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return counts
