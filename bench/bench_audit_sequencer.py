"""The sequencer: how fast it drains a backlog, and how long a commit waits for its checkpoint at 500/s."""

from __future__ import annotations

import bisect
import math
import multiprocessing
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

NAME = "audit_sequencer"
BACKLOG = 200_000
BACKLOG_WRITERS = 4
RECORDS_PER_TRANSACTION = 100
RATE = 500
WRITE_SECONDS = 60.0
TICK_SECONDS = 1.0  # the Celery beat schedule of broker.tasks.audit_sequence
TARGET_P99_SECONDS = 2.0


def write_backlog(count: int) -> None:
    """Record `count` entries, 100 to a transaction."""
    common.setup_django()
    from django.db import connection, transaction

    from broker import audit

    for start in range(0, count, RECORDS_PER_TRANSACTION):
        with transaction.atomic():
            for n in range(start, min(start + RECORDS_PER_TRANSACTION, count)):
                audit.record(verb="bench.backlog", actor="system", subject=f"bench:{n}", details={"n": n})
    connection.close()


def paced_writer(rate: int, seconds: float, results: Any) -> None:
    """Commit one entry per transaction at `rate`/s; send back (entry id, commit wall-clock time) pairs."""
    common.setup_django()
    from django.db import connection, transaction

    from broker import audit

    commits: list[tuple[int, float]] = []
    started = time.perf_counter()
    for n in range(int(rate * seconds)):
        due = started + n / rate
        if (ahead := due - time.perf_counter()) > 0:
            time.sleep(ahead)
        with transaction.atomic():
            entry = audit.record(verb="bench.paced", actor="system", subject=f"bench:{n}", details={"n": n})
        commits.append((entry.pk, time.time()))
    results.put((commits, time.perf_counter() - started))
    connection.close()


def sequencer_loop(stop: Any) -> None:
    """The scheduled job as beat runs it: sequence(), then wait for the next whole-second tick."""
    common.setup_django()
    from django.db import connection

    from broker.audit import sequencer

    while not stop.is_set():
        sequencer.sequence()
        now = time.time()
        time.sleep(math.floor(now / TICK_SECONDS + 1) * TICK_SECONDS - now)
    sequencer.sequence()
    connection.close()


def percentile(sorted_values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of already sorted values."""
    return sorted_values[max(0, math.ceil(fraction * len(sorted_values)) - 1)]


def drain_backlog(context: Any) -> dict[str, Any]:
    """Part (a): write the backlog from several processes, then time sequence() draining it."""
    from django.db import connection

    from broker.audit import sequencer
    from broker.models import Checkpoint

    sequencer.sequence()  # sign the first checkpoint and load the keys, outside the timing
    connection.close()
    started = time.perf_counter()
    share = BACKLOG // BACKLOG_WRITERS
    writers = [context.Process(target=write_backlog, args=(share,)) for _ in range(BACKLOG_WRITERS)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
        if writer.exitcode != 0:
            raise RuntimeError(f"a backlog writer failed with exit code {writer.exitcode}")
    written_seconds = time.perf_counter() - started
    print(f"backlog: {BACKLOG:,} entries written in {written_seconds:.0f} s ({BACKLOG / written_seconds:,.0f}/s)")

    checkpoints_before = Checkpoint.objects.count()
    started = time.perf_counter()
    drained = sequencer.sequence()
    seconds = time.perf_counter() - started
    if drained != BACKLOG:
        raise RuntimeError(f"sequence() drained {drained} entries, expected {BACKLOG}")
    return {
        "entries": drained,
        "seconds": round(seconds, 2),
        "entries_per_s": round(drained / seconds),
        "checkpoints": Checkpoint.objects.count() - checkpoints_before,
        "backlog_write_per_s": round(BACKLOG / written_seconds),
    }


def steady_delay(context: Any) -> dict[str, Any]:
    """Part (b): one writer at 500/s for 60 s beside the beat-paced sequencer; delay from commit to checkpoint."""
    from django.db import connection

    from broker.models import AuditEntry, Checkpoint

    connection.close()
    stop = context.Event()
    results = context.Queue()
    loop = context.Process(target=sequencer_loop, args=(stop,))
    writer = context.Process(target=paced_writer, args=(RATE, WRITE_SECONDS, results))
    loop.start()
    writer.start()
    commits, write_seconds = results.get(timeout=WRITE_SECONDS * 3 + 60)
    writer.join()
    time.sleep(2 * TICK_SECONDS)  # let the loop's next tick cover the last commits
    stop.set()
    loop.join()

    index_of = dict(AuditEntry.objects.filter(pk__in=[pk for pk, _ in commits]).values_list("pk", "leaf_index"))
    checkpoints = list(Checkpoint.objects.order_by("tree_size").values_list("tree_size", "timestamp"))
    sizes = [size for size, _ in checkpoints]
    delays: list[float] = []
    for pk, committed_at in commits:
        leaf_index = index_of[pk]
        if leaf_index is None:
            raise RuntimeError(f"entry {pk} was never sequenced")
        _, stamp = checkpoints[bisect.bisect_right(sizes, leaf_index)]  # first tree_size > leaf_index
        delays.append(stamp.timestamp() - committed_at)
    delays.sort()
    return {
        "entries": len(commits),
        "write_seconds": round(write_seconds, 2),
        "achieved_per_s": round(len(commits) / write_seconds, 1),
        "p50_s": round(percentile(delays, 0.50), 3),
        "p95_s": round(percentile(delays, 0.95), 3),
        "p99_s": round(percentile(delays, 0.99), 3),
        "max_s": round(delays[-1], 3),
        "min_s": round(delays[0], 3),
    }


def main() -> None:
    """Run both parts on a fresh database, print the table and record the figures."""
    common.create_database()
    context = multiprocessing.get_context("spawn")
    drain = drain_backlog(context)
    steady = steady_delay(context)
    met = steady["p99_s"] < TARGET_P99_SECONDS

    print(
        common.table(
            ["part", "figure", "value"],
            [
                ("a", "backlog drained", f"{drain['entries']:,} entries in {drain['seconds']} s"),
                ("a", "sequencer throughput", f"{drain['entries_per_s']:,} entries/s"),
                ("a", "checkpoints signed", drain["checkpoints"]),
                ("b", "write rate (peer)", f"{steady['achieved_per_s']}/s of {RATE}/s asked"),
                ("b", "commit to checkpoint p50", f"{steady['p50_s']} s"),
                ("b", "p95", f"{steady['p95_s']} s"),
                ("b", "p99", f"{steady['p99_s']} s"),
                ("b", "max", f"{steady['max_s']} s"),
            ],
        )
    )
    print(f"target p99 < {TARGET_P99_SECONDS} s: {'met' if met else 'MISSED'}")
    common.record(
        NAME,
        {
            "revision": common.revision("broker"),
            "drain": drain,
            "steady": steady,
            "peer": f"the writer's own commits: achieved rate vs {RATE}/s asked",
            "peer_per_s": steady["achieved_per_s"],
            "ratio": round(steady["achieved_per_s"] / RATE, 3),
            "target": f"p99 commit-to-checkpoint < {TARGET_P99_SECONDS} s at {RATE} entries/s",
            "met": met,
        },
    )


if __name__ == "__main__":
    main()
