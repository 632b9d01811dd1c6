"""verify_log() over a million sequenced entries, beside a plain read of the rows it streams."""

from __future__ import annotations

import multiprocessing
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

NAME = "audit_verify"
ENTRIES = 1_000_000
GENERATORS = 2
RECORDS_PER_TRANSACTION = 1000
CHUNK = 20_000  # broker.audit.verifier.CHUNK
ROUNDS = 2
TARGET_RATE = 250_000
TARGET_RATIO = 1 / 3
# Exactly what the verifier streams (broker.audit.verifier._leaves).
LEAVES_SQL = (
    "SELECT e.leaf_index, e.leaf_hash, b.canonical FROM broker_auditentry e"
    " LEFT JOIN broker_auditbody b ON b.entry_id = e.id"
    " WHERE e.leaf_index IS NOT NULL ORDER BY e.leaf_index"
)


def generate(count: int, done: Any) -> None:
    """Record `count` entries through audit.record(), 1000 to a transaction, adding to `done` as they commit."""
    common.setup_django()
    from django.db import connection, transaction

    from broker import audit

    for start in range(0, count, RECORDS_PER_TRANSACTION):
        end = min(start + RECORDS_PER_TRANSACTION, count)
        with transaction.atomic():
            for n in range(start, end):
                audit.record(verb="bench.generated", actor="system", subject=f"bench:{n}", details={"n": n})
        with done.get_lock():
            done.value += end - start
    connection.close()


def plain_read() -> int:
    """Stream the verifier's rows through a server-side cursor, touching each one; returns how many."""
    from django.db import connection

    count = 0
    connection.ensure_connection()
    with connection.connection.cursor(name="bench_plain_read") as cursor:
        cursor.itersize = CHUNK
        cursor.execute(LEAVES_SQL)
        while rows := cursor.fetchmany(CHUNK):
            for _leaf_index, _leaf_hash, _canonical in rows:
                count += 1
    return count


def verify() -> int:
    """Run the verifier over the whole log; returns how many entries it checked."""
    from broker.audit.verifier import verify_log

    return verify_log().entries


def measure(kind: str, results: Any) -> None:
    """In a fresh process: time one plain read or one verification, and its peak RSS."""
    common.setup_django()
    from django.db import connection, transaction

    connection.ensure_connection()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        started = time.perf_counter()
        # A server-side cursor needs a transaction: in autocommit, DECLARE fails (so does `manage.py audit_verify`).
        with transaction.atomic():
            entries = plain_read() if kind == "plain" else verify()
        seconds = time.perf_counter() - started
    except Exception as exc:
        results.put(("failed", repr(exc), 0.0, 0, 0))
        raise
    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    connection.close()
    results.put((kind, entries, seconds, rss_before, rss_peak))


def fill(context: Any) -> dict[str, Any]:
    """Generate the entries from two processes, printing progress, then sequence them all."""
    from broker.audit import sequencer
    from broker.models import Checkpoint

    done = context.Value("q", 0)
    started = time.perf_counter()
    share = ENTRIES // GENERATORS
    generators = [context.Process(target=generate, args=(share, done)) for _ in range(GENERATORS)]
    for generator in generators:
        generator.start()
    while any(generator.is_alive() for generator in generators):
        time.sleep(15)
        elapsed = time.perf_counter() - started
        print(f"  generated {done.value:>9,} entries in {elapsed:4.0f} s ({done.value / elapsed:,.0f}/s)", flush=True)
    if any(generator.exitcode != 0 for generator in generators) or done.value != ENTRIES:
        raise RuntimeError(f"generation failed: {done.value} entries written")
    generate_seconds = time.perf_counter() - started

    started = time.perf_counter()
    sequenced = 0
    while count := sequencer.sequence():
        sequenced += count
    sequence_seconds = time.perf_counter() - started
    checkpoints = Checkpoint.objects.count()
    print(f"  sequenced {sequenced:,} entries in {sequence_seconds:.0f} s, {checkpoints} checkpoints", flush=True)
    return {
        "generate_seconds": round(generate_seconds),
        "sequence_seconds": round(sequence_seconds),
        "checkpoints": checkpoints,
    }


def _filled() -> bool:
    """Whether the bench database already holds the whole sequenced log."""
    try:
        common.setup_django()
        from broker.models import LogHead

        head = LogHead.objects.filter(pk=1).first()
        return head is not None and head.tree_size == ENTRIES
    except Exception:
        return False


def main() -> None:
    """Fill a fresh database, time plain read and verification alternately, print and record the figures."""
    context = multiprocessing.get_context("spawn")
    if os.environ.get("BENCH_REUSE") and _filled():
        # Writing a million entries takes minutes; BENCH_REUSE=1 keeps those of the last run.
        print(f"reusing the {ENTRIES:,} sequenced entries already in the bench database", flush=True)
        setup: dict[str, Any] = {"reused": True}
    else:
        common.create_database()
        print(f"generating {ENTRIES:,} entries through audit.record() from {GENERATORS} processes", flush=True)
        setup = fill(context)
    from django.db import connection

    connection.close()

    runs: list[dict[str, Any]] = []
    results = context.Queue()
    for _ in range(ROUNDS):
        for kind in ("plain", "verify"):
            process = context.Process(target=measure, args=(kind, results))
            process.start()
            kind, entries, seconds, rss_before, rss_peak = results.get(timeout=600)
            process.join()
            if kind == "failed":
                raise RuntimeError(f"a measurement failed: {entries}")
            if entries != ENTRIES:
                raise RuntimeError(f"{kind} saw {entries} entries, expected {ENTRIES}")
            runs.append({"kind": kind, "seconds": round(seconds, 2), "entries_per_s": round(entries / seconds)})
            runs[-1] |= {"rss_before_mib": round(rss_before / 1024), "rss_peak_mib": round(rss_peak / 1024)}
            print(f"  {kind:6s} {seconds:6.2f} s  {entries / seconds:>9,.0f} entries/s", flush=True)

    best = {
        kind: max((run for run in runs if run["kind"] == kind), key=lambda run: run["entries_per_s"])
        for kind in ("plain", "verify")
    }
    plain_rate = best["plain"]["entries_per_s"]
    verify_rate = best["verify"]["entries_per_s"]
    ratio = verify_rate / plain_rate
    rss_peak = max(run["rss_peak_mib"] for run in runs if run["kind"] == "verify")
    rss_before = min(run["rss_before_mib"] for run in runs if run["kind"] == "verify")
    rate_met = verify_rate >= TARGET_RATE
    ratio_met = ratio >= TARGET_RATIO

    print(
        common.table(
            ["", "entries/s (best of 2)", "seconds", "peak RSS"],
            [
                (
                    "plain read (peer)",
                    f"{plain_rate:,}",
                    best["plain"]["seconds"],
                    f"{best['plain']['rss_peak_mib']} MiB",
                ),
                ("verify_log", f"{verify_rate:,}", best["verify"]["seconds"], f"{rss_peak} MiB ({rss_before} before)"),
            ],
        )
    )
    print(f"ratio verify/plain {ratio:.2f}")
    print(f"target verify >= {TARGET_RATE:,}/s: {'met' if rate_met else 'MISSED'}")
    print(f"target ratio >= 1/3: {'met' if ratio_met else 'MISSED'}")
    common.record(
        NAME,
        {
            "revision": common.revision("broker"),
            "entries": ENTRIES,
            **setup,
            "runs": runs,
            "peer": "plain read of the verifier's SQL through a server-side cursor, 20,000 rows a fetch",
            "peer_entries_per_s": plain_rate,
            "verify_entries_per_s": verify_rate,
            "ratio": round(ratio, 3),
            "verify_rss_peak_mib": rss_peak,
            "verify_rss_before_mib": rss_before,
            "target": f"verify_log >= {TARGET_RATE}/s and >= 1/3 of the plain read's rate",
            "rate_met": rate_met,
            "ratio_met": ratio_met,
            "met": rate_met and ratio_met,
        },
    )


if __name__ == "__main__":
    main()
