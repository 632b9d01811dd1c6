"""Throughput of 8 concurrent writers: a one-row transaction, with and without audit.record()."""

from __future__ import annotations

import json
import multiprocessing
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

NAME = "audit_write"
WRITERS = 8
WARMUP_SECONDS = 3.0
SECONDS = 20.0
PHASES = ("baseline", "audit", "baseline", "audit")
TARGET_RATIO = 0.70


def transact(variant: str, n: int) -> None:
    """One transaction: insert a plain row, and in the audit variant record it."""
    from django.db import connection, transaction

    from broker import audit

    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO bench_plain (payload) VALUES (%s::jsonb) RETURNING id", [json.dumps({"n": n})])
            (row_id,) = cursor.fetchone()
        if variant == "audit":
            audit.record(verb="bench.wrote", actor="system", subject=f"bench_plain:{row_id}", details={"n": n})


def writer(barrier: Any, results: Any) -> None:
    """One writer process: for each phase, wait for the others, warm up, then count transactions."""
    common.setup_django()
    from django.db import connection

    n = 0
    for phase, variant in enumerate(PHASES):
        barrier.wait()
        started = time.perf_counter()
        counting_from = started + WARMUP_SECONDS
        until = counting_from + SECONDS
        count = 0
        while (now := time.perf_counter()) < until:
            transact(variant, n)
            n += 1
            count += now >= counting_from
        results.put((phase, count))
    connection.close()


def main() -> None:
    """Run the phases with 8 spawned writers, print the table and record the figures."""
    common.create_database()
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bench_plain (id bigserial PRIMARY KEY, payload jsonb)")
    connection.close()

    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(WRITERS)
    results = context.Queue()
    processes = [context.Process(target=writer, args=(barrier, results)) for _ in range(WRITERS)]
    for process in processes:
        process.start()
    counts = [0] * len(PHASES)
    for _ in range(WRITERS * len(PHASES)):
        phase, count = results.get(timeout=len(PHASES) * (WARMUP_SECONDS + SECONDS) + 120)
        counts[phase] += count
    for process in processes:
        process.join()

    rates = [count / SECONDS for count in counts]
    baseline = [rate for rate, variant in zip(rates, PHASES, strict=True) if variant == "baseline"]
    audited = [rate for rate, variant in zip(rates, PHASES, strict=True) if variant == "audit"]
    baseline_rate = sum(baseline) / len(baseline)
    audit_rate = sum(audited) / len(audited)
    ratio = audit_rate / baseline_rate
    met = ratio >= TARGET_RATIO

    print(f"{WRITERS} writers, {SECONDS:.0f} s per phase after {WARMUP_SECONDS:.0f} s warm-up")
    print(
        common.table(
            ["phase", "variant", "transactions/s"],
            [(i + 1, v, f"{r:,.0f}") for i, (v, r) in enumerate(zip(PHASES, rates, strict=True))],
        )
    )
    verdict = "met" if met else "MISSED"
    print(f"baseline {baseline_rate:,.0f}/s, audit {audit_rate:,.0f}/s, ratio {ratio:.2f}")
    print(f"target: audit keeps >= {TARGET_RATIO:.0%} of the baseline: {verdict}")
    common.record(
        NAME,
        {
            "revision": common.revision("broker"),
            "writers": WRITERS,
            "seconds_per_phase": SECONDS,
            "phases": [{"variant": v, "tx_per_s": round(r, 1)} for v, r in zip(PHASES, rates, strict=True)],
            "peer": "baseline: the same transaction without audit.record()",
            "peer_tx_per_s": round(baseline_rate, 1),
            "audit_tx_per_s": round(audit_rate, 1),
            "ratio": round(ratio, 3),
            "target": f"ratio >= {TARGET_RATIO}",
            "met": met,
        },
    )


if __name__ == "__main__":
    main()
