"""A small HTTP load generator: a few processes, each one connection, for a warm-up then a counted window.

Each process builds its requests before the clock starts (so that, say, signing a client
assertion per request costs the generator nothing while it counts), waits for the others,
then sends them one after another on its connection, kept alive when the server allows it
(gunicorn's sync workers close after each response, and the connection is reopened).
Only the responses with the expected status that arrive inside the counted window count.
"""

from __future__ import annotations

import http.client
import itertools
import multiprocessing
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None


@dataclass
class Result:
    """What one measurement counted, all processes together."""

    ok: int
    seconds: float
    statuses: Counter[str]
    exhausted: bool
    sample: str

    @property
    def rate(self) -> float:
        return self.ok / self.seconds

    @property
    def errors(self) -> int:
        return sum(self.statuses.values())


def repeat(request: Request) -> Iterable[Request]:
    return itertools.repeat(request)


def _worker(
    port: int,
    factory: Callable[..., Iterable[Request]],
    args: tuple[Any, ...],
    index: int,
    expected: int,
    warmup: float,
    seconds: float,
    barrier: Any,
    results: Any,
) -> None:
    requests = iter(factory(index, *args))
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    statuses: Counter[str] = Counter()
    ok, exhausted, sample = 0, False, ""
    barrier.wait()
    counting_from = time.perf_counter() + warmup
    until = counting_from + seconds
    while time.perf_counter() < until:
        request = next(requests, None)
        if request is None:
            exhausted = True
            break
        try:
            connection.request(request.method, request.path, body=request.body, headers=request.headers)
            response = connection.getresponse()
            body = response.read()
            status: int | str = response.status
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            status, body = type(exc).__name__, str(exc).encode()
        done = time.perf_counter()
        if counting_from <= done < until:
            if status == expected:
                ok += 1
            else:
                statuses[str(status)] += 1
                sample = sample or body[:300].decode(errors="replace")
    connection.close()
    results.put((ok, dict(statuses), exhausted, sample))


def run(
    port: int,
    factory: Callable[..., Iterable[Request]],
    args: tuple[Any, ...] = (),
    *,
    processes: int = 4,
    warmup: float = 3.0,
    seconds: float = 15.0,
    expected: int = 200,
) -> Result:
    """Load 127.0.0.1:port with `processes` connections; factory(index, *args) gives each its requests.

    factory must be a module-level function (processes are spawned, it is passed by name).
    """
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(processes)
    results = context.Queue()
    workers = [
        context.Process(target=_worker, args=(port, factory, args, index, expected, warmup, seconds, barrier, results))
        for index in range(processes)
    ]
    for worker in workers:
        worker.start()
    total, statuses, exhausted, sample = 0, Counter[str](), False, ""
    for _ in workers:
        ok, counted, ran_out, first = results.get(timeout=warmup + seconds + 300)
        total += ok
        statuses.update(counted)
        exhausted |= ran_out
        sample = sample or first
    for worker in workers:
        worker.join()
    return Result(ok=total, seconds=seconds, statuses=statuses, exhausted=exhausted, sample=sample)
