"""Mixed API load on Tiers as production runs it: deploy/local.sh on a private PostgreSQL and Redis.

4 gunicorn workers and 2 Celery workers (deploy/local.sh's defaults) serve a closed-loop load of
LOAD_PROCESSES client processes (default 4), each on one keep-alive connection, for LOAD_SECONDS
(default 60) after a 5 s warm-up. Each client draws its next call from a fixed mix:

    token     30 %  POST /oauth/token (client_secret_basic, bound to the client's grant)
    read      50 %  GET /api/v1/grants/<id>/records (JSON Lines, read to the end)
    consent   20 %  a citizen pauses, then resumes, one of their consents (pauses fan out webhooks)
    decision        POST /api/v1/decisions, only if the world has a federated grant (the demo has none)

The webhooks the consent changes cause are received, verified and deduplicated by the fault
tests' receiver. Asserted: no 5xx. Recorded: requests/s, p50/p95/p99 overall and per kind, in
bench/results/load.jsonl. The peer is the same mix's read-only share: not a separate run, the
per-kind figures show what writes cost beside reads.
"""

from __future__ import annotations

import base64
import http.client
import json
import multiprocessing
import os
import random
import re
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "deploy" / "faults"))

from bench.common import free_port, record, revision, table  # noqa: E402

SECONDS = float(os.environ.get("LOAD_SECONDS", "60"))
WARMUP = 5.0
PROCESSES = int(os.environ.get("LOAD_PROCESSES", "4"))
CITIZENS = 4 * PROCESSES
MIX = [("token", 30), ("read", 50), ("consent", 20)]


def percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _login(port: int, username: str, password: str) -> dict[str, str]:
    """A citizen's session cookie and CSRF token, as the portal's login form gives them."""
    import requests

    session = requests.Session()
    base = f"http://127.0.0.1:{port}"
    page = session.get(f"{base}/accounts/login/", timeout=30)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token
    response = session.post(
        f"{base}/accounts/login/",
        data={"username": username, "password": password, "csrfmiddlewaretoken": token.group(1)},
        headers={"Referer": f"{base}/accounts/login/"},
        allow_redirects=False,
        timeout=30,
    )
    assert response.status_code == 302, response.status_code
    cookies = session.cookies.get_dict()
    return {
        "cookie": f"sessionid={cookies['sessionid']}; csrftoken={cookies['csrftoken']}",
        "csrf": cookies["csrftoken"],
    }


def client(index: int, port: int, world: dict[str, Any], barrier: Any, results: Any) -> None:
    """One closed-loop client: a data user's token and reads, and its own citizens' consent changes."""
    rng = random.Random(index)
    grant = world["grants"][index % len(world["grants"])]
    secret = next(c for c in world["clients"] if c["organisation"] == grant["organisation"])
    basic = base64.b64encode(f"{secret['client_id']}:{secret['client_secret']}".encode()).decode()
    token_body = f"grant_type=client_credentials&scope=grant:{grant['id']}".encode()
    token_headers = {"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"}
    people = world["citizens"][index * 4 : index * 4 + 4]
    sessions = [(_login(port, person["username"], world["password"]), person) for person in people]
    paused: dict[str, bool] = {}
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def call(method: str, path: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, bytes]:
        nonlocal connection
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException):
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.read()

    status, body = call("POST", "/oauth/token", token_body, token_headers)
    access = json.loads(body)["access_token"]
    fetched = time.monotonic()
    kinds, weights = zip(*MIX, strict=True)
    timings: dict[str, list[float]] = defaultdict(list)
    statuses: Counter[str] = Counter()
    samples: list[str] = []
    barrier.wait()
    counting_from = time.monotonic() + WARMUP
    until = counting_from + SECONDS
    while (started := time.monotonic()) < until:
        kind = rng.choices(kinds, weights)[0]
        if kind == "token":
            status, body = call("POST", "/oauth/token", token_body, token_headers)
        elif kind == "read":
            if started - fetched > 240:  # tokens live 300 s
                access = json.loads(call("POST", "/oauth/token", token_body, token_headers)[1])["access_token"]
                fetched = started
            headers = {"Authorization": f"Bearer {access}", "Accept": "application/x-ndjson"}
            status, body = call("GET", f"/api/v1/grants/{grant['id']}/records", None, headers)
        else:
            cookies, person = rng.choice(sessions)
            consent = rng.choice(list(person["consents"].values()))
            action = "resume" if paused.get(consent) else "pause"
            headers = {"Cookie": cookies["cookie"], "X-CSRFToken": cookies["csrf"], "Content-Type": "application/json"}
            status, body = call("POST", f"/api/v1/me/consents/{consent}/{action}", b"{}", headers)
            if status == 200:
                paused[consent] = action == "pause"
        done = time.monotonic()
        if counting_from <= done < until:
            timings[kind].append(done - started)
            statuses[f"{kind} {status}"] += 1
            if status >= 500 and len(samples) < 3:
                samples.append(body[:300].decode(errors="replace"))
    connection.close()
    results.put((dict(timings), dict(statuses), samples))


def measure(port: int, world: dict[str, Any]) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES)
    results = context.Queue()
    processes = [
        context.Process(target=client, args=(index, port, world, barrier, results)) for index in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    timings: dict[str, list[float]] = defaultdict(list)
    statuses: Counter[str] = Counter()
    samples: list[str] = []
    for _ in processes:
        got_timings, got_statuses, got_samples = results.get(timeout=SECONDS + WARMUP + 300)
        for kind, values in got_timings.items():
            timings[kind].extend(values)
        statuses.update(got_statuses)
        samples.extend(got_samples)
    for process in processes:
        process.join()
    every = [value for values in timings.values() for value in values]
    kinds = {
        kind: {
            "requests": len(values),
            "rps": round(len(values) / SECONDS, 1),
            "p50_ms": round(percentile(values, 0.50) * 1000, 1),
            "p95_ms": round(percentile(values, 0.95) * 1000, 1),
            "p99_ms": round(percentile(values, 0.99) * 1000, 1),
        }
        for kind, values in sorted(timings.items())
    }
    return {
        "requests": len(every),
        "rps": round(len(every) / SECONDS, 1),
        "p50_ms": round(percentile(every, 0.50) * 1000, 1),
        "p95_ms": round(percentile(every, 0.95) * 1000, 1),
        "p99_ms": round(percentile(every, 0.99) * 1000, 1),
        "errors_5xx": sum(count for key, count in statuses.items() if key.split()[1].startswith("5")),
        "statuses": dict(sorted(statuses.items())),
        "kinds": kinds,
        "samples": samples,
    }


def main() -> int:
    from private_servers import PrivatePostgres, PrivateRedis

    from tests.faults.receiver import Receiver

    logs = HERE / "logs" / "load"
    logs.mkdir(parents=True, exist_ok=True)
    postgres = PrivatePostgres().create()
    redis = PrivateRedis().start()
    port, receiver = free_port(), Receiver(free_port())
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "TEST_"))},
        "DATABASE_URL": postgres.url,
        "REDIS_URL": redis.url,
        "SECRET_KEY": secrets.token_urlsafe(50),
        "TIERS_KEK": base64.b64encode(os.urandom(32)).decode(),
        "TIERS_ENV_FILE": "",
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "TIERS_BASE_URL": f"http://127.0.0.1:{port}",
        "PORT": str(port),
        "TIERS_LOG_DIR": str(logs),
        "TIERS_UPLOAD_DIR": str(logs / "uploads"),
        "CELERY_QUEUE": "tiers-load",
        "TIERS_WEBHOOK_ALLOW_LOOPBACK_HTTP": "true",
        # The load comes from a few addresses and clients: the limits would measure themselves.
        "THROTTLE_ANON": "1000000/min",
        "THROTTLE_USER": "1000000/min",
        "OAUTH_TOKEN_RATE_PER_CLIENT": "1000000",
        "OAUTH_TOKEN_RATE_PER_ADDRESS": "1000000",
        "LOG_LEVEL": "WARNING",
    }
    receiver.configure(env["TIERS_BASE_URL"])
    receiver.start()
    server = None
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
        world_file = logs / "world.json"
        subprocess.run(
            [sys.executable, "-m", "tests.faults.world", str(world_file), receiver.base_url, str(CITIZENS)],
            cwd=ROOT,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        world = json.loads(world_file.read_text())
        output = (logs / "local.out").open("wb")
        server = subprocess.Popen([str(ROOT / "deploy" / "local.sh")], cwd=ROOT, env=env, stdout=output, stderr=output)
        deadline = time.monotonic() + 120
        while b"serving on" not in (logs / "local.out").read_bytes():
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((logs / "local.out").read_text())
            time.sleep(0.3)
        figures = measure(port, world)
    finally:
        if server is not None and server.poll() is None:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=90)
        receiver.stop()
        redis.destroy()
        postgres.destroy()
    rows = [
        [kind, values["requests"], values["rps"], values["p50_ms"], values["p95_ms"], values["p99_ms"]]
        for kind, values in figures["kinds"].items()
    ]
    rows.append(["all", figures["requests"], figures["rps"], figures["p50_ms"], figures["p95_ms"], figures["p99_ms"]])
    print(table(["kind", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms"], rows))
    print(f"statuses: {figures['statuses']}")
    record(
        "load",
        {
            "revision": revision("broker", "consent", "sharing", "deploy"),
            "setup": {
                "gunicorn_workers": 4,
                "celery_workers": 2,
                "celery_concurrency": 2,
                "clients": PROCESSES,
                "seconds": SECONDS,
                "mix": dict(MIX),
                "decisions": "not exercised: the demo world has no federated grant",
            },
            "webhooks_applied": len(receiver.tally.applied),
            **figures,
        },
    )
    if figures["errors_5xx"]:
        print(f"load: {figures['errors_5xx']} answers were 5xx: {figures['samples']}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
