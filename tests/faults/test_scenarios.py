"""Fault scenarios: Tiers loses Redis, a worker, PostgreSQL or a receiver, and nothing is lost or doubled.

Each scenario writes events through the API while its fault lasts, repairs the fault,
and waits (within its own deadline) until every webhook delivery written meanwhile has
been applied by the receiver. It then records one line,

    FAULT <scenario> written=<deliveries written> delivered=<applied by the receivers>
          duplicates=<effects applied twice> recovery_s=<seconds from the repair until all were delivered>

asserts written == delivered and duplicates == 0, and checks the audit log with
`manage.py audit_verify`. See docs/faults.md.
"""

from __future__ import annotations

import datetime
import os
import re
import signal
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from tests.faults.client import Answer, Citizen, DataUser, data_users_of
from tests.faults.conftest import FAULT_LINES, Stack, wait_until

pytestmark = pytest.mark.faults
PURPOSES = ("dpv:PublicBenefit", "dpv:NonCommercialResearch")
INTERNALS = re.compile(r"Traceback|File \"|psycopg|OperationalError|InterfaceError|django\.db", re.IGNORECASE)


@dataclass
class Scenario:
    """What one scenario wrote and what reached the receivers."""

    name: str
    stack: Stack
    since: datetime.datetime = field(init=False)
    repaired_at: float | None = None
    done_at: float | None = None

    def __post_init__(self) -> None:
        ((self.since,),) = self.stack.query("SELECT now()")

    def deliveries(self) -> list[tuple[str, str, int]]:
        """(jti, state, attempts) of every webhook delivery written since the scenario began."""
        rows = self.stack.query(
            "SELECT id::text, state, attempts FROM broker_webhookdelivery WHERE created_at >= %s", [self.since]
        )
        return [(str(jti), str(state), int(attempts)) for jti, state, attempts in rows]

    def all_delivered(self) -> bool:
        rows = self.deliveries()
        applied = self.stack.receiver.applied({jti for jti, _, _ in rows})
        return bool(rows) and len(applied) == len(rows) and all(state == "delivered" for _, state, _ in rows)

    def finish(self, *, timeout: float, extra_recovery: float = 0.0) -> dict[str, Any]:
        """Wait for every delivery, print the FAULT line, assert nothing was lost or doubled, verify the log."""
        try:
            wait_until(self.all_delivered, timeout=timeout, what=f"{self.name}: every delivery applied", interval=0.5)
            self.done_at = time.monotonic()
        except AssertionError as late:
            states = self.stack.query(
                "SELECT state, attempts, left(last_error, 120), leased_until > now() FROM broker_webhookdelivery "
                "WHERE created_at >= %s AND state <> 'delivered'",
                [self.since],
            )
            raise AssertionError(f"{late}; not delivered: {states}") from None
        finally:
            figures = self._figures(extra_recovery)
            FAULT_LINES.append(
                f"FAULT {self.name} written={figures['written']} delivered={figures['delivered']} "
                f"duplicates={figures['duplicates']} recovery_s={figures['recovery_s']:.1f}"
            )
        assert figures["written"] > 0
        assert figures["written"] == figures["delivered"]
        assert figures["duplicates"] == 0
        assert not self.stack.receiver.tally.refused, self.stack.receiver.tally.refused
        pending = self.stack.query(
            "SELECT count(*) FROM broker_outboxevent WHERE created_at >= %s AND (handled_at IS NULL "
            "OR quarantined_at IS NOT NULL)",
            [self.since],
        )[0][0]
        assert pending == 0, f"{pending} outbox events unhandled or quarantined"
        verified = self.stack.manage("audit_verify")
        assert verified.returncode == 0, verified.stderr + verified.stdout
        return figures

    def _figures(self, extra_recovery: float) -> dict[str, Any]:
        rows = self.deliveries()
        applied = self.stack.receiver.applied({jti for jti, _, _ in rows})
        # From the repair until every delivery was applied and marked delivered (or until now, if never).
        done = self.done_at or time.monotonic()
        recovery = max(done - self.repaired_at, extra_recovery) if self.repaired_at else extra_recovery
        return {
            "written": len(rows),
            "delivered": len(applied),
            "duplicates": self.stack.receiver.tally.duplicate_effects,
            "recovery_s": max(recovery, 0.0),
            "attempts": Counter(attempts for _, _, attempts in rows),
        }


def _readers(stack: Stack) -> dict[str, DataUser]:
    readers = data_users_of(stack.world)
    for reader in readers.values():
        assert reader.fetch_token().ok
    return readers


def _withdraw_and_read(citizen: Citizen, purpose: str, reader: DataUser, before: int, trips: int) -> int:
    """Withdraw, then read at once: the citizen's records are gone from the very next read."""
    answer = citizen.withdraw(purpose)
    assert answer.status == 200, (answer.status, answer.body)
    assert answer.seconds < 5, f"a withdrawal took {answer.seconds:.1f} s"
    read = reader.read()
    assert read.ok, (read.status, read.body[:500])
    assert read.records == before - trips, f"{citizen.username}'s records still delivered after the withdrawal"
    return before - trips


def _connected_count(stack: Stack, worker: str) -> int:
    return (stack.log_dir / f"{worker}.log").read_text().count("Connected to redis://")


def test_redis_down(stack: Stack) -> None:
    """Citizens withdraw while Redis is down: recorded and effective at once; told once Redis returns."""
    citizens = stack.take_citizens(4)
    for citizen in citizens:
        citizen.login()
    readers = _readers(stack)
    counts = {purpose: readers[purpose].read().records for purpose in PURPOSES}
    trips = stack.world["trips"]
    scenario = Scenario("redis_down", stack)
    connections = {worker: _connected_count(stack, worker) for worker in ("worker-1", "worker-2")}

    stack.redis.stop()
    try:
        down_at = time.monotonic()
        ((down_since,),) = stack.query("SELECT now()")
        for citizen in citizens:
            for purpose in PURPOSES:
                counts[purpose] = _withdraw_and_read(citizen, purpose, readers[purpose], counts[purpose], trips)
        written_while_down = stack.query(
            "SELECT id::text FROM broker_webhookdelivery WHERE created_at >= %s", [down_since]
        )
        assert written_while_down, "the withdrawals wrote no webhook delivery"
        assert not stack.receiver.applied({str(jti) for (jti,) in written_while_down}), "told while Redis was down?"
        time.sleep(max(0.0, 5 - (time.monotonic() - down_at)))  # down for 5 s at least
    finally:
        stack.redis.start()
    scenario.repaired_at = time.monotonic()
    wait_until(
        lambda: all(_connected_count(stack, worker) > seen for worker, seen in connections.items()),
        timeout=30,
        what="both Celery workers reconnected to Redis",
    )
    scenario.finish(timeout=60)


def _classify(answer: Answer | Exception) -> str:
    if isinstance(answer, Exception):
        return f"client error {type(answer).__name__}"
    if answer.ok:
        return "ok"
    if answer.status == 503 and answer.content_type.startswith("application/problem+json"):
        return "503 problem" if not INTERNALS.search(answer.body) else "503 with internals"
    return f"{answer.status} {answer.content_type}"


def test_postgres_restart(stack: Stack) -> None:
    """PostgreSQL restarts under load: requests fail as clean 503 problems, then Tiers recovers by itself."""
    citizens = stack.take_citizens(4)
    for citizen in citizens:
        citizen.login()
    readers = _readers(stack)
    gunicorn = stack.pid("gunicorn")
    scenario = Scenario("postgres_restart", stack)
    outcomes: Counter[str] = Counter()
    samples: dict[str, str] = {}
    stop = threading.Event()
    pending = [(citizen, purpose) for citizen in citizens for purpose in PURPOSES]
    withdrawn: list[tuple[Citizen, str]] = []
    lock = threading.Lock()

    def record(kind: str, answer: Answer | Exception) -> str:
        outcome = _classify(answer)
        with lock:
            outcomes[outcome] += 1
            if outcome != "ok":
                samples.setdefault(outcome, f"{kind}: {answer if isinstance(answer, Exception) else answer.body[:300]}")
        return outcome

    def load(index: int) -> None:
        reader = readers[PURPOSES[index % 2]]
        while not stop.is_set():
            for kind, call in (("read", reader.read), ("token", reader.fetch_token)):
                try:
                    record(kind, call())
                except requests.RequestException as exc:
                    record(kind, exc)
            with lock:
                job = pending.pop() if pending else None
            if job is not None:
                citizen, purpose = job
                try:
                    answer: Answer | Exception = citizen.withdraw(purpose)
                except requests.RequestException as exc:
                    answer = exc
                outcome = record("withdraw", answer)
                with lock:
                    (withdrawn if outcome == "ok" else pending).append(job)
            time.sleep(0.3)

    threads = [threading.Thread(target=load, args=(index,), daemon=True) for index in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(2)
    try:
        stack.postgres.stop("fast")
        time.sleep(4)
    finally:
        stack.postgres.start()
        scenario.repaired_at = time.monotonic()
    before = outcomes["ok"]
    recovered = wait_until(
        lambda: outcomes["ok"] >= before + 4 and time.monotonic() - scenario.repaired_at,
        timeout=30,
        what="requests succeed",
    )
    wait_until(lambda: not pending, timeout=30, what="every withdrawal recorded after retries")
    time.sleep(1)
    stop.set()
    for thread in threads:
        thread.join(timeout=20)

    assert stack.pid("gunicorn") == gunicorn, "gunicorn was restarted"
    assert stack.process.poll() is None, "deploy/local.sh stopped"
    assert outcomes["503 problem"] > 0, f"the outage was not seen: {dict(outcomes)}"
    assert set(outcomes) <= {"ok", "503 problem"}, f"unclean failures: {dict(outcomes)} {samples}"
    assert len(withdrawn) == len(citizens) * len(PURPOSES)
    states = stack.query(
        "SELECT count(*) FROM consent_consentrecord WHERE id = ANY(%s::uuid[]) AND state = 'withdrawn'",
        [[citizen.consents[purpose] for citizen, purpose in withdrawn]],
    )[0][0]
    assert states == len(withdrawn)
    scenario.finish(timeout=120, extra_recovery=float(recovered))


def _process_with_connection_to(port: int) -> int:
    """The process id holding a TCP connection to 127.0.0.1:port (the worker sending to the receiver)."""
    listing = subprocess.run(
        ["ss", "-Htnp", "state", "established", "dst", f"127.0.0.1:{port}"], capture_output=True, text=True, check=True
    ).stdout
    found = re.search(r"pid=(\d+)", listing)
    assert found, f"no process is connected to the receiver: {listing!r}"
    return int(found.group(1))


def _parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[1])


def test_worker_sigkill(stack: Stack) -> None:
    """A worker is SIGKILLed in the middle of a webhook delivery: the delivery completes later, applied once."""
    (citizen,) = stack.take_citizens(1)
    citizen.login()
    scenario = Scenario("worker_sigkill", stack)
    stack.receiver.hold_next(8.0)  # the receiver applies, then is slow to answer: the kill lands meanwhile
    assert citizen.withdraw(PURPOSES[0]).status == 200
    assert stack.receiver.holding.wait(timeout=30), "no delivery reached the receiver"

    sender = _process_with_connection_to(stack.receiver.port)
    worker = _parent_of(sender)
    supervised = {stack.pid("worker-1"), stack.pid("worker-2")}
    assert worker in supervised, "the sender is not a pool process of a supervised worker"
    os.kill(sender, signal.SIGKILL)
    os.kill(worker, signal.SIGKILL)
    scenario.repaired_at = time.monotonic()
    wait_until(
        lambda: {stack.pid("worker-1"), stack.pid("worker-2")} - supervised, timeout=30, what="the worker restarted"
    )
    figures = scenario.finish(timeout=120)
    assert stack.receiver.tally.redeliveries >= 1, "the killed attempt was not sent again"
    assert max(figures["attempts"]) >= 2


def test_receiver_down(stack: Stack) -> None:
    """The receivers' endpoint is down for a while: deliveries back off, then all arrive once it is back."""
    citizens = stack.take_citizens(3)
    for citizen in citizens:
        citizen.login()
    scenario = Scenario("receiver_down", stack)
    stack.receiver.stop()
    try:
        for citizen in citizens:
            for purpose in PURPOSES:
                assert citizen.withdraw(purpose).status == 200
        wait_until(
            lambda: all(attempts >= 1 and state == "pending" for _, state, attempts in scenario.deliveries()),
            timeout=30,
            what="every delivery tried once against the closed endpoint",
        )
        time.sleep(5)
    finally:
        stack.receiver.start()
    scenario.repaired_at = time.monotonic()
    figures = scenario.finish(timeout=150)
    assert min(figures["attempts"]) >= 2, "a delivery arrived without having failed first"
