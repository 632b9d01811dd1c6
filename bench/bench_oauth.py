"""OAuth: tokens/s of Tiers' token endpoint beside django-oauth-toolkit, and the cost of the resource check.

A. Client-credentials tokens per second, Tiers (client_secret_basic, and private_key_jwt with
   pre-signed ES256 assertions, one jti each) against django-oauth-toolkit (opaque tokens, a
   plain-text client secret), each served by gunicorn with 2 sync workers on the same
   PostgreSQL, one server at a time, Tiers/DOT alternated twice; best of each.
   Target: each Tiers method >= 1.5x DOT.
B. Requests/s of a tiny DRF endpoint behind the resource check (AccessTokenAuthentication,
   IsAuthenticated) against the same endpoint unprotected, one token reused; alternated
   twice; best of each. Target: protected >= 80 % of unprotected. The check's parts are also
   timed in-process (JWT verification, cached and not, and `tokens.live_caller`).

Run: .venv/bin/python bench/bench_oauth.py [--keep]   (--keep leaves the databases for profiling)
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common, httpload
from bench.httpload import Request

NAME = "oauth"
HERE = Path(__file__).resolve().parent
ROOT = common.ROOT
VENV_BIN = Path(sys.executable).parent
DOT_VENV = common.TOOLS_VENV  # DOT shares the tools venv (requirements-bench.txt) with the load generator
DOT_PROJECT = HERE / "dot_project"
LOGS = HERE / "logs"

TIERS_DATABASE = "tiers_oauth_bench"
DOT_DATABASE = "dot_bench"
REDIS_URL = "redis://127.0.0.1:6379/14"
VERY_HIGH = "1000000000"

PROCESSES = 4
WARMUP = 3.0
SECONDS = 15.0
ROUNDS = 2
ASSERTIONS_PER_PROCESS = 10_000  # ~57 µs each to sign; enough for 2,600 tokens/s over warm-up and window
TARGET_TOKENS_RATIO = 1.5
TARGET_PROTECTED_RATIO = 0.80
MEASURED = ("broker", "sharing", "bench")  # the code whose revision the result is recorded against

FORM = "application/x-www-form-urlencoded"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- the peer's venv ---------------------------------------------------------------------------


def ensure_dot_venv() -> str:
    """The benchmarks' tools venv (common.tools_venv(), from requirements-bench.txt); DOT's version."""
    common.tools_venv()
    return subprocess.run(
        [str(DOT_VENV / "bin" / "python"), "-c", "import oauth2_provider; print(oauth2_provider.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


# --- environments and servers ------------------------------------------------------------------


def tiers_env(port: int, settings: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in ("DJANGO_SETTINGS_MODULE", "TIERS_ENV_FILE")}
    env.update(
        DJANGO_SETTINGS_MODULE=settings,
        DATABASE_URL=f"{common.SERVER_URL}/{TIERS_DATABASE}",
        REDIS_URL=REDIS_URL,
        TIERS_BASE_URL=f"http://127.0.0.1:{port}",
        ALLOWED_HOSTS="127.0.0.1",
        OAUTH_TOKEN_RATE_PER_CLIENT=VERY_HIGH,
        OAUTH_TOKEN_RATE_PER_ADDRESS=VERY_HIGH,
        LOG_LEVEL="WARNING",
        PYTHONPATH=str(ROOT),
    )
    env.update(extra or {})
    return env


def dot_env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in ("DJANGO_SETTINGS_MODULE", "PYTHONPATH")}
    env.update(DJANGO_SETTINGS_MODULE="dot_bench.settings", DOT_DATABASE=DOT_DATABASE, LOG_LEVEL="WARNING")
    return env


def serve_tiers(port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return common.start_gunicorn(
        VENV_BIN / "gunicorn",
        "broker.wsgi:application",
        port=port,
        env=env,
        log=LOGS / "tiers.log",
        ready_path="/healthz",
    )


def serve_dot(port: int) -> subprocess.Popen[bytes]:
    return common.start_gunicorn(
        DOT_VENV / "bin" / "gunicorn",
        "dot_bench.wsgi:application",
        port=port,
        env=dot_env(),
        log=LOGS / "dot.log",
        cwd=DOT_PROJECT,
        ready_path="/o/token/",
    )


# --- what the load generator sends (module level: the generator's processes are spawned) -------


def basic_header(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def token_requests(index: int, path: str, client_id: str, secret: str) -> Iterable[Request]:
    headers = {"Authorization": basic_header(client_id, secret), "Content-Type": FORM}
    return httpload.repeat(Request("POST", path, headers, b"grant_type=client_credentials"))


def assertion_requests(
    index: int, client_id: str, jwk: dict[str, Any], audience: str, count: int = ASSERTIONS_PER_PROCESS
) -> list[Request]:
    """Signed before the clock starts: one ES256 assertion per request, each with its own jti."""
    from urllib.parse import urlencode

    from joserfc import jwt
    from joserfc.jwk import ECKey

    key = ECKey.import_key(jwk)
    now = int(time.time())
    requests = []
    for _ in range(count):
        claims = {"iss": client_id, "sub": client_id, "aud": audience, "iat": now, "exp": now + 900}
        claims["jti"] = uuid.uuid4().hex
        assertion = jwt.encode({"alg": "ES256", "kid": key.kid}, claims, key, algorithms=["ES256"])
        body = urlencode(
            {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion}
        ).encode()
        requests.append(Request("POST", "/oauth/token", {"Content-Type": FORM}, body))
    return requests


def get_requests(index: int, path: str, token: str) -> Iterable[Request]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpload.repeat(Request("GET", path, headers))


def once(port: int, request: Request) -> tuple[int, bytes]:
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(request.method, request.path, body=request.body, headers=request.headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def expect(port: int, request: Request, status: int) -> bytes:
    got, body = once(port, request)
    if got != status:
        raise SystemExit(f"bench: {request.method} {request.path} answered {got}, not {status}: {body[:500]!r}")
    return body


def measure(label: str, port: int, factory: Callable[..., Iterable[Request]], args: tuple[Any, ...]) -> dict[str, Any]:
    result = httpload.run(port, factory, args, processes=PROCESSES, warmup=WARMUP, seconds=SECONDS)
    if result.exhausted:
        raise SystemExit(f"bench: {label}: the load generator ran out of pre-signed requests; raise ASSERTIONS")
    log(f"  {label}: {result.rate:,.0f}/s ({result.ok} x 200, {result.errors} other: {dict(result.statuses)})")
    if result.sample:
        log(f"    first non-200: {result.sample}")
    # The 1-minute load average after the window: the machine is shared, this says how much.
    load = round(os.getloadavg()[0], 1)
    return {"rate": round(result.rate, 1), "ok": result.ok, "errors": dict(result.statuses), "load_average": load}


# --- setup -------------------------------------------------------------------------------------


def set_up_tiers(port: int) -> dict[str, Any]:
    common.recreate_named_database(TIERS_DATABASE)
    env = tiers_env(port, "tests.settings")
    subprocess.run([sys.executable, "manage.py", "migrate", "--verbosity", "0"], cwd=ROOT, env=env, check=True)
    env["DJANGO_SETTINGS_MODULE"] = "bench.tiers_bench_settings"
    done = subprocess.run(
        [sys.executable, str(HERE / "oauth_setup.py")], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def set_up_dot() -> dict[str, str]:
    common.recreate_named_database(DOT_DATABASE)
    done = subprocess.run(
        [str(DOT_VENV / "bin" / "python"), str(DOT_PROJECT / "setup_dot.py")],
        cwd=DOT_PROJECT,
        env=dot_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


# --- A: tokens per second ----------------------------------------------------------------------


def part_a(port: int, tiers: dict[str, Any], dot: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    basic = tiers["basic"]
    signed = tiers["private_key_jwt"]
    audience = f"http://127.0.0.1:{port}/oauth/token"
    runs: dict[str, list[dict[str, Any]]] = {"tiers_client_secret_basic": [], "tiers_private_key_jwt": [], "dot": []}
    for round_ in range(1, ROUNDS + 1):
        log(f"A, round {round_}: Tiers (gunicorn, 2 sync workers)")
        server = serve_tiers(port, tiers_env(port, "tests.settings"))
        try:
            probe = next(iter(token_requests(0, "/oauth/token", basic["client_id"], basic["secret"])))
            expect(port, probe, 200)
            expect(port, assertion_requests(0, signed["client_id"], signed["jwk"], audience, 1)[0], 200)
            runs["tiers_client_secret_basic"].append(
                measure(
                    "Tiers client_secret_basic",
                    port,
                    token_requests,
                    ("/oauth/token", basic["client_id"], basic["secret"]),
                )
            )
            runs["tiers_private_key_jwt"].append(
                measure(
                    "Tiers private_key_jwt", port, assertion_requests, (signed["client_id"], signed["jwk"], audience)
                )
            )
        finally:
            common.stop_process(server)
        log(f"A, round {round_}: django-oauth-toolkit (gunicorn, 2 sync workers)")
        server = serve_dot(port)
        try:
            expect(port, next(iter(token_requests(0, "/o/token/", dot["client_id"], dot["secret"]))), 200)
            runs["dot"].append(
                measure("DOT plain-text secret", port, token_requests, ("/o/token/", dot["client_id"], dot["secret"]))
            )
        finally:
            common.stop_process(server)
    return runs


# --- B: the resource check ---------------------------------------------------------------------


def part_b(port: int, tiers: dict[str, Any]) -> tuple[str, dict[str, list[dict[str, Any]]]]:
    basic = tiers["basic"]
    runs: dict[str, list[dict[str, Any]]] = {"protected": [], "unprotected": []}
    log("B: Tiers with bench/tiers_bench_urls.py (gunicorn, 2 sync workers)")
    server = serve_tiers(port, part_b_env(port))
    try:
        probe = next(iter(token_requests(0, "/oauth/token", basic["client_id"], basic["secret"])))
        token = json.loads(expect(port, probe, 200))["access_token"]
        expect(port, Request("GET", "/bench/protected"), 401)
        expect(port, Request("GET", "/bench/protected", {"Authorization": f"Bearer {token}"}), 200)
        expect(port, Request("GET", "/bench/unprotected"), 200)
        for round_ in range(1, ROUNDS + 1):
            log(f"B, round {round_}")
            runs["protected"].append(measure("protected", port, get_requests, ("/bench/protected", token)))
            runs["unprotected"].append(measure("unprotected", port, get_requests, ("/bench/unprotected", "")))
    finally:
        common.stop_process(server)
    return token, runs


def part_b_env(port: int) -> dict[str, str]:
    # One token serves the whole part: it must outlive it.
    lifetime = {"OAUTH_ACCESS_TOKEN_SECONDS": "3600"}
    return tiers_env(port, "bench.tiers_bench_settings", lifetime)


def per_call_us(function: Callable[[], Any], n: int) -> float:
    """The median of 5 batches, in µs per call."""
    batches = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(n):
            function()
        batches.append((time.perf_counter() - started) / n * 1e6)
    return round(statistics.median(batches), 1)


def in_process(port: int, token: str) -> dict[str, Any]:
    """The resource check's parts, timed in this process against the same database and Redis."""
    os.environ.update(part_b_env(port))
    import django

    django.setup()
    import redis.client
    from django.core.cache import cache
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from rest_framework.request import Request as DrfRequest
    from rest_framework.test import APIRequestFactory

    from broker.oauth import tokens
    from broker.oauth.authentication import AccessTokenAuthentication

    audience = tokens.tiers_audience()
    claims = tokens.verify(token, audience=audience)
    tokens.live_caller(claims)  # connect, load the key, remember the token if the code does

    def select_one() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()

    redis_commands = 0
    execute_command = redis.client.Redis.execute_command

    def counting(self: Any, *args: Any, **options: Any) -> Any:
        nonlocal redis_commands
        redis_commands += 1
        return execute_command(self, *args, **options)

    redis.client.Redis.execute_command = counting  # type: ignore[method-assign]
    try:
        with CaptureQueriesContext(connection) as queries:
            tokens.live_caller(claims)
    finally:
        redis.client.Redis.execute_command = execute_command  # type: ignore[method-assign]

    authentication = AccessTokenAuthentication()
    request = DrfRequest(APIRequestFactory().get("/bench/protected", HTTP_AUTHORIZATION=f"Bearer {token}"))
    figures: dict[str, Any] = {
        "jwt_verify_uncached_us": per_call_us(lambda: tokens._check(token, audience), 200),
        "jwt_verify_cached_us": per_call_us(lambda: tokens.verify(token, audience=audience), 5000),
        "live_caller_us": per_call_us(lambda: tokens.live_caller(claims), 500),
        "live_caller_db_queries": len(queries.captured_queries),
        "live_caller_redis_commands": redis_commands,
        "select_1_round_trip_us": per_call_us(select_one, 500),
        "redis_get_round_trip_us": per_call_us(lambda: cache.get("bench:absent"), 500),
        "authenticate_us": per_call_us(lambda: authentication.authenticate(request), 500),
    }
    invalidate = getattr(tokens, "invalidate_liveness", None)
    if invalidate is not None:
        # The path after a revocation anywhere: the database is asked again.
        both = per_call_us(lambda: (invalidate(), tokens.live_caller(claims)), 200)
        figures["live_caller_after_invalidation_us"] = round(both - per_call_us(invalidate, 200), 1)
    connection.close()
    return figures


# --- report ------------------------------------------------------------------------------------


def best(runs: list[dict[str, Any]]) -> float:
    return max(run["rate"] for run in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--keep", action="store_true", help="leave tiers_oauth_bench and dot_bench for profiling")
    parser.add_argument("--quick", action="store_true", help="a 3-second smoke run, one round, not recorded")
    options = parser.parse_args()
    if options.quick:
        global WARMUP, SECONDS, ROUNDS
        WARMUP, SECONDS, ROUNDS = 1.0, 3.0, 1
    started = time.monotonic()
    LOGS.mkdir(exist_ok=True)
    for old in LOGS.glob("*.log"):
        old.unlink()
    dot_version = ensure_dot_venv()
    revision = common.revision(*MEASURED)
    port = common.free_port()
    log(f"setup: databases {TIERS_DATABASE} and {DOT_DATABASE}, clients; servers on 127.0.0.1:{port}")
    try:
        tiers = set_up_tiers(port)
        dot = set_up_dot()
        token_runs = part_a(port, tiers, dot)
        token, resource_runs = part_b(port, tiers)
        log("B: timing the resource check's parts in-process")
        parts = in_process(port, token)
    finally:
        if not options.keep:
            common.drop_named_database(DOT_DATABASE)
            common.drop_named_database(TIERS_DATABASE)

    dot_rate = best(token_runs["dot"])
    basic_rate = best(token_runs["tiers_client_secret_basic"])
    jwt_rate = best(token_runs["tiers_private_key_jwt"])
    protected, unprotected = best(resource_runs["protected"]), best(resource_runs["unprotected"])
    ratios = {
        "tiers_client_secret_basic_vs_dot": round(basic_rate / dot_rate, 2),
        "tiers_private_key_jwt_vs_dot": round(jwt_rate / dot_rate, 2),
        "protected_vs_unprotected": round(protected / unprotected, 3),
    }
    targets = {
        "tiers_client_secret_basic_vs_dot": f">= {TARGET_TOKENS_RATIO}",
        "tiers_private_key_jwt_vs_dot": f">= {TARGET_TOKENS_RATIO}",
        "protected_vs_unprotected": f">= {TARGET_PROTECTED_RATIO}",
    }
    met = {
        "tiers_client_secret_basic_vs_dot": ratios["tiers_client_secret_basic_vs_dot"] >= TARGET_TOKENS_RATIO,
        "tiers_private_key_jwt_vs_dot": ratios["tiers_private_key_jwt_vs_dot"] >= TARGET_TOKENS_RATIO,
        "protected_vs_unprotected": ratios["protected_vs_unprotected"] >= TARGET_PROTECTED_RATIO,
    }
    # Worker time per request (2 workers busy), and what the check adds to it.
    check_ms = round(2000 / protected - 2000 / unprotected, 2)

    def verdict(key: str) -> str:
        return "met" if met[key] else "MISSED"

    print()
    print(
        common.table(
            ["measure", "Tiers", "peer", "peer is", "ratio", "target", ""],
            [
                [
                    "tokens/s client_secret_basic",
                    f"{basic_rate:,.0f}",
                    f"{dot_rate:,.0f}",
                    f"DOT {dot_version}, plain secret",
                    ratios["tiers_client_secret_basic_vs_dot"],
                    targets["tiers_client_secret_basic_vs_dot"],
                    verdict("tiers_client_secret_basic_vs_dot"),
                ],
                [
                    "tokens/s private_key_jwt",
                    f"{jwt_rate:,.0f}",
                    f"{dot_rate:,.0f}",
                    f"DOT {dot_version}, plain secret",
                    ratios["tiers_private_key_jwt_vs_dot"],
                    targets["tiers_private_key_jwt_vs_dot"],
                    verdict("tiers_private_key_jwt_vs_dot"),
                ],
                [
                    "requests/s protected endpoint",
                    f"{protected:,.0f}",
                    f"{unprotected:,.0f}",
                    "same endpoint, unprotected",
                    ratios["protected_vs_unprotected"],
                    targets["protected_vs_unprotected"],
                    verdict("protected_vs_unprotected"),
                ],
            ],
        )
    )
    print()
    print(
        common.table(
            ["resource check, in-process", "µs per call"],
            [
                ["JWT verification (signature + claims), uncached", parts["jwt_verify_uncached_us"]],
                ["tokens.verify, cached (what a reused token pays)", parts["jwt_verify_cached_us"]],
                [
                    f"tokens.live_caller, reused token ({parts['live_caller_db_queries']} SQL, "
                    f"{parts['live_caller_redis_commands']} Redis)",
                    parts["live_caller_us"],
                ],
                [
                    "tokens.live_caller after an invalidation (asks the database)",
                    parts.get("live_caller_after_invalidation_us", "-"),
                ],
                ["  for scale: SELECT 1 round trip", parts["select_1_round_trip_us"]],
                ["  for scale: Redis GET round trip (Django cache)", parts["redis_get_round_trip_us"]],
                ["AccessTokenAuthentication.authenticate, all of it", parts["authenticate_us"]],
                ["worker time the check adds per HTTP request (2 workers / rate)", round(check_ms * 1000)],
            ],
        )
    )
    if options.quick:
        print("\n--quick: not recorded")
        return
    line = common.record(
        NAME,
        {
            "peers": {
                "tokens": f"django-oauth-toolkit {dot_version}, opaque tokens, hash_client_secret=False, same Django, "
                "PostgreSQL and gunicorn (bench/dot_project)",
                "resource": "the same tiny DRF endpoint with authentication_classes=[] and AllowAny",
            },
            "load": {
                "server": "gunicorn, 2 sync workers, one server at a time",
                "generator": f"{PROCESSES} processes, one http.client connection each (closed by sync workers)",
                "warmup_seconds": WARMUP,
                "seconds": SECONDS,
                "rounds": ROUNDS,
                "figure": "best of the rounds, 200 responses only",
            },
            "tokens_per_second": {
                "tiers_client_secret_basic": basic_rate,
                "tiers_private_key_jwt": jwt_rate,
                "dot_plain_secret": dot_rate,
            },
            "requests_per_second": {"protected": protected, "unprotected": unprotected},
            "runs": {**token_runs, **resource_runs},
            "resource_check_in_process": parts,
            "resource_check_worker_ms_per_request": check_ms,
            "ratios": ratios,
            "targets": targets,
            "met": met,
            "revision": revision if revision == common.revision(*MEASURED) else f"changed during the run: {revision}",
            "elapsed_seconds": round(time.monotonic() - started),
        },
    )
    print(f"\nrecorded in bench/results/{NAME}.jsonl ({line['date']}, {line['elapsed_seconds']} s)")


if __name__ == "__main__":
    main()
