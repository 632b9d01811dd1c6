"""Helpers for audit tests: a log of n entries, sequenced and checkpointed."""

from __future__ import annotations

import pytest
from django.db import transaction

from broker import audit
from broker.audit import sequencer


def write_entries(count: int, *, citizen_id: int | None = None, verb: str = "test.happened") -> None:
    """Append `count` entries, each in its own transaction like real changes."""
    for number in range(count):
        with transaction.atomic():
            audit.record(
                verb=verb,
                actor="system",
                subject=f"thing:{number}",
                details={"n": number},
                citizen=citizen_id,
            )


@pytest.fixture
def log_of():  # type: ignore[no-untyped-def]
    """Build a log in several sequenced batches, so there are several checkpoints."""

    def build(count: int, batches: int = 3) -> None:
        step = max(1, count // batches)
        written = 0
        while written < count:
            now = min(step, count - written)
            write_entries(now)
            written += now
            sequencer.sequence()

    return build
