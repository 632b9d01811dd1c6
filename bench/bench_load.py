"""Mixed API load on Tiers as production runs it: deploy/local.sh on a private PostgreSQL and Redis, driven by locust.

4 gunicorn workers and 2 Celery workers with beat (deploy/local.sh's defaults) serve a closed-loop
load of LOAD_USERS locust users (default 4, FastHttpUser, no think time, one locust process) for
LOAD_SECONDS (default 60) after a 5 s warm-up. Each user draws its next call from a fixed mix
(bench/locustfile.py):

    token     25 %  POST /oauth/token (a data user's client_secret_basic, bound to its hosted grant)
    read      40 %  GET /api/v1/grants/<id>/records (JSON Lines, read to the end)
    decision  20 %  POST /api/v1/decisions: the holder's API asks whom the federated grant may include,
                    for 1,000 of its customers' references (bench/load_world.py sets the grant up)
    consent   15 %  a citizen pauses, then resumes, one of their consents (pauses fan out webhooks)

locust runs from bench/.venv-tools (requirements-bench.txt, made on first use). The webhooks the
consent changes cause are received, verified and deduplicated by the fault tests' receiver.
Asserted: no 5xx. Recorded: requests/s, p50/p95/p99 overall and per kind, the statuses, the
decisions' included subjects, in bench/results/load.jsonl. The peer is the same mix's read-only
share: not a separate run, the per-kind figures show what writes cost beside reads.
"""

from __future__ import annotations

import base64
import json
import os
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

from bench.common import free_port, record, revision, table, tools_venv  # noqa: E402

SECONDS = float(os.environ.get("LOAD_SECONDS", "60"))
WARMUP = 5.0
USERS = int(os.environ.get("LOAD_USERS", "4"))
CITIZENS = 4 * USERS
MIX = {"token": 25, "read": 40, "decision": 20, "consent": 15}


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


def run_locust(tools: Path, port: int, world: dict[str, Any], logs: Path) -> dict[str, Any]:
    """The citizens log in, then locust runs the mix headless; returns what bench/locustfile.py wrote."""
    sessions = [{**person, **_login(port, person["username"], world["password"])} for person in world["citizens"]]
    given = logs / "locust-input.json"
    given.write_text(json.dumps({"world": world, "sessions": sessions, "mix": MIX, "warmup": WARMUP}))
    taken = logs / "locust-samples.json"
    taken.unlink(missing_ok=True)
    command = [
        str(tools / "locust"),
        "-f", str(HERE / "locustfile.py"),
        "--headless", "-u", str(USERS), "-r", str(USERS), "-t", f"{WARMUP + SECONDS + 1:.0f}s",
        "--host", f"http://127.0.0.1:{port}",
        "--csv", str(logs / "locust"), "--only-summary", "--exit-code-on-error", "0",
    ]  # fmt: skip
    env = {**os.environ, "LOAD_INPUT": str(given), "LOAD_SAMPLES": str(taken)}
    with (logs / "locust.log").open("wb") as output:
        subprocess.run(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, check=True)
    if not taken.exists():
        raise RuntimeError(f"locust wrote no samples; see {logs / 'locust.log'}")
    return dict(json.loads(taken.read_text()))


def measure(got: dict[str, Any]) -> dict[str, Any]:
    """Requests/s and percentiles of the answers that ended inside the counted window, overall and per kind."""
    timings: dict[str, list[float]] = defaultdict(list)
    statuses: Counter[str] = Counter()
    for kind, status, milliseconds, ended in got["samples"]:
        if WARMUP <= ended < WARMUP + SECONDS:
            timings[kind].append(milliseconds / 1000)
            statuses[f"{kind} {status}"] += 1
    included = [count for ended, count in got["decided"] if WARMUP <= ended < WARMUP + SECONDS]
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
        "errors_5xx": sum(count for key, count in statuses.items() if int(key.split()[1]) >= 500),
        "no_answer": sum(count for key, count in statuses.items() if int(key.split()[1]) == 0),
        "statuses": dict(sorted(statuses.items())),
        "kinds": kinds,
        "decisions_included": {"min": min(included), "max": max(included)} if included else None,
        "samples": [answer for answer in got["refused"] if not 0 < answer["status"] < 500][:3],
        "refused": [answer for answer in got["refused"] if 300 <= answer["status"] < 500][:3],
    }


def main() -> int:
    from private_servers import PrivatePostgres, PrivateRedis

    from tests.faults.receiver import Receiver

    logs = HERE / "logs" / "load"
    logs.mkdir(parents=True, exist_ok=True)
    tools = tools_venv()
    locust = subprocess.run([str(tools / "locust"), "--version"], capture_output=True, text=True, check=True)
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
            [sys.executable, "-m", "bench.load_world", str(world_file), receiver.base_url, str(CITIZENS)],
            cwd=ROOT,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        world = json.loads(world_file.read_text())
        output = (logs / "local.out").open("wb")
        server = subprocess.Popen([str(ROOT / "deploy" / "local.sh")], cwd=ROOT, env=env, stdout=output, stderr=output)
        deadline = time.monotonic() + 300  # migrate and collectstatic first; slow on a shared machine
        while b"serving on" not in (logs / "local.out").read_bytes():
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((logs / "local.out").read_text())
            time.sleep(0.3)
        load_before = os.getloadavg()
        got = run_locust(tools, port, world, logs)
        load_after = os.getloadavg()
    finally:
        if server is not None and server.poll() is None:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=90)
        receiver.stop()
        redis.destroy()
        postgres.destroy()
    figures = measure(got)
    rows = [
        [kind, values["requests"], values["rps"], values["p50_ms"], values["p95_ms"], values["p99_ms"]]
        for kind, values in figures["kinds"].items()
    ]
    rows.append(["all", figures["requests"], figures["rps"], figures["p50_ms"], figures["p95_ms"], figures["p99_ms"]])
    print(table(["kind", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms"], rows))
    print(f"statuses: {figures['statuses']}")
    print(f"decisions: {figures['decisions_included']} of {len(world['federated']['subjects'])} subjects included")
    print(f"load average (1, 5, 15 min) before: {load_before}, after: {load_after}")
    record(
        "load",
        {
            "revision": revision("broker", "consent", "sharing", "deploy"),
            "setup": {
                "gunicorn_workers": 4,
                "celery_workers": 2,
                "celery_concurrency": 2,
                "generator": f"{locust.stdout.split(' from ')[0].strip()}, FastHttpUser, one process",
                "users": USERS,
                "seconds": SECONDS,
                "mix": dict(MIX),
                "decisions": {
                    "grant": world["federated"]["dataset"],
                    "batch": len(world["federated"]["subjects"]),
                    "linked": world["federated"]["linked"],
                    "client": "the holder's client_secret_basic client, scope decisions",
                },
            },
            "load_average": {"before": [round(x, 2) for x in load_before], "after": [round(x, 2) for x in load_after]},
            "webhooks_applied": len(receiver.tally.applied),
            **figures,
        },
    )
    if figures["errors_5xx"] or figures["no_answer"]:
        failed = f"{figures['errors_5xx']} answers were 5xx and {figures['no_answer']} never came"
        print(f"load: {failed}; the first: {figures['samples']}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
