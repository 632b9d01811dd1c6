"""Hosted delivery: records/s of `GET /api/v1/grants/{id}/records` beside a plain psycopg JSON Lines dump.

Two hosted datasets of one mobility holder share 100,000 linked subjects, about
60 % of whom consent: `trips-100k` (one record each, 100,000 records) and
`trips-1m` (ten each, 1,000,000 records, interleaved by day as daily uploads
would be). One grant on each asks for 4 of the 6 payload fields.

Tiers: gunicorn with 1 sync worker (tests.settings: DEBUG off), a fresh server
for each read so that its worker's peak RSS (VmHWM) belongs to that read alone;
the client fetches a grant:<id> token, then reads the whole stream with
requests (stream=True), counting lines. The time runs from the request to the
last byte, so it includes `open_read` (choosing the consenting subjects, their
pseudonyms, the audit entry).

Peer (the floor for any Python delivery): a plain psycopg script, in a fresh
process, running the same selection in one query (the records of the holder's
live links whose citizen consents now under the agreement's module, from a
server-side cursor, 2,000 rows a fetch) and writing each row as one JSON line
{"subject_ref", "key_version", "payload" (base64 of the sealed bytes, as
stored)} to /dev/null in 64 KiB chunks: the same rows, no decryption, no
pseudonyms, no projection.

Each size is read twice by each (alternating); best of 2. Target: Tiers >= 50 %
of the floor at 1M records, and the worker's peak RSS flat from 100k to 1M
records (the subjects are the same 100,000 in both, so the comparison isolates
the records; what the read holds per subject shows in the peak at both sizes).

Run: .venv/bin/python bench/bench_delivery.py [--profile 100k|1m] [--quick]
     BENCH_REUSE=1 keeps the last run's seeded database (seeding takes about a minute).
"""

from __future__ import annotations

import argparse
import base64
import datetime
import io
import json
import multiprocessing
import os
import random
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

NAME = "delivery"
HERE = Path(__file__).resolve().parent
ROOT = common.ROOT
VENV_BIN = Path(sys.executable).parent
LOGS = HERE / "logs"

DATABASE = "tiers_delivery_bench"
DATABASE_URL = f"{common.SERVER_URL}/{DATABASE}"
REDIS_URL = "redis://127.0.0.1:6379/8"
VERY_HIGH = "1000000000"

SUBJECTS = 100_000
CONSENTING = 60_000  # 60 % of the subjects, chosen at random (seeded)
SIZES = {"100k": ("trips-100k", 1), "1m": ("trips-1m", 10)}  # dataset slug, records per subject
ROUNDS = 2
FETCH_ROWS = 2000  # sharing.delivery.FETCH_ROWS
FLUSH_BYTES = 1 << 16  # sharing.delivery.FLUSH_BYTES
TARGET_RATIO = 0.5
RSS_FLAT_MIB = 32  # "flat": the 1M read's peak may exceed the 100k read's by this much at most
READERS = {
    "floor": "psycopg JSON Lines (peer)",
    "tiers": "Tiers HTTP stream",
}
MEASURED = ("sharing", "broker", "bench/bench_delivery.py")

RESEARCH = "dpv:NonCommercialResearch"
FIELDS = ["day", "origin", "destination", "km"]
SCHEMA: dict[str, Any] = {
    "fields": [
        {"name": "traveller", "type": "string", "constraints": {"required": True}},
        {"name": "day", "type": "date", "constraints": {"required": True}},
        {"name": "origin", "type": "string"},
        {"name": "destination", "type": "string"},
        {"name": "km", "type": "number", "constraints": {"minimum": 0}},
        {"name": "mode", "type": "string"},
        {"name": "duration", "type": "integer", "constraints": {"minimum": 0}},
    ]
}
MODULE: dict[str, Any] = {
    "title_en": "Your trips, for better public transport",
    "title_fr": "Vos trajets, pour de meilleurs transports publics",
    "notice_en": "We share your trips under a pseudonym.",
    "notice_fr": "Nous partageons vos trajets sous un pseudonyme.",
    "data_categories": ["dpv-pd:Location", "dpv-pd:TravelHistory"],
    "purposes": [RESEARCH],
    "recipient_categories": ["public-authority", "research-body"],
    "duration_days": 365,
    "jurisdiction": "EU",
}
STOPS = [
    "Gare Centrale",
    "Place de la République",
    "Hôtel de Ville",
    "Université",
    "Hôpital Nord",
    "Les Prés",
    "Zone Artisanale",
    "Port Sud",
    "Quartier Saint-Éloi",
    "Parc des Expositions",
    "Lycée Molière",
    "Pont Neuf",
]
USER_COLUMNS = ["password", "is_superuser", "username", "first_name", "last_name", "email", "is_staff", "is_active"]
USER_COLUMNS.append("date_joined")
MODES = ["tram", "bus", "bike", "walk", "train", "car"]

# The peer's query: the records of the holder's live links whose citizen consents now
# (sharing.eligibility.consenting_links joined with the records, as one statement).
FLOOR_SQL = """
SELECT r.subject_ref, r.key_version, r.payload
FROM sharing_record r
JOIN consent_identitylink l ON l.subject_ref = r.subject_ref AND l.holder_id = %(holder)s AND l.unlinked_at IS NULL
WHERE r.dataset_id = %(dataset)s
  AND l.citizen_id IN (
    SELECT c.citizen_id FROM consent_consentrecord c
    WHERE c.holder_id = %(holder)s AND c.purpose = %(purpose)s AND c.state IN ('given', 'renewed')
      AND c.expires_at > now() AND c.module_id = ANY(%(modules)s)
  )
"""


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def tiers_env(port: int) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in ("DJANGO_SETTINGS_MODULE", "TIERS_ENV_FILE")}
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        DATABASE_URL=DATABASE_URL,
        REDIS_URL=REDIS_URL,
        TIERS_BASE_URL=f"http://127.0.0.1:{port}",
        ALLOWED_HOSTS="127.0.0.1",
        OAUTH_TOKEN_RATE_PER_CLIENT=VERY_HIGH,
        OAUTH_TOKEN_RATE_PER_ADDRESS=VERY_HIGH,
        LOG_LEVEL="WARNING",
        PYTHONPATH=str(ROOT),
        # A sync worker busy with one long response sends no heartbeat: the default 30 s would kill it.
        GUNICORN_CMD_ARGS="--timeout 1800",
    )
    return env


def setup_django(port: int) -> None:
    import django

    os.environ.update(tiers_env(port))
    django.setup()


# --- seeding ---------------------------------------------------------------------------------------


def subject_ref(n: int) -> str:
    return f"cust-{n:06d}"


def copy_rows(table: str, columns: list[str], rows: Any) -> None:
    from django.db import connection

    with connection.cursor() as cursor, cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def seed() -> dict[str, Any]:
    """Organisations, module, datasets, agreement and grants through the services; the big tables by COPY."""
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.utils import timezone

    from broker import keys
    from broker.models import Membership, Organisation, SigningKey, User
    from consent import services as consent
    from sharing import ingest, services, vault
    from sharing.models import Agreement, Dataset

    started = time.perf_counter()
    connection.close()
    common.recreate_named_database(DATABASE)
    call_command("migrate", verbosity=0)
    keys.active_key(SigningKey.Purpose.JWS)  # before the server's worker would create it
    holder = Organisation.objects.create(
        slug="bench-mobility",
        name="Bench Mobilités",
        legal_identifier="000000002",
        identifier_scheme=Organisation.IdentifierScheme.SIREN,
        country="FR",
        kind=Organisation.Kind.HOLDER,
        verification_state=Organisation.Verification.VERIFIED,
        verified_at=timezone.now(),
    )
    city = Organisation.objects.create(
        slug="bench-city",
        name="Bench City",
        legal_identifier="000000003",
        identifier_scheme=Organisation.IdentifierScheme.SIREN,
        country="FR",
        kind=Organisation.Kind.USER,
        recipient_category=Organisation.RecipientCategory.PUBLIC_AUTHORITY,
        verification_state=Organisation.Verification.VERIFIED,
        verified_at=timezone.now(),
    )
    holder_admin = User.objects.create_user(username="bench-holder-admin", password=None)
    Membership.objects.create(user=holder_admin, organisation=holder, role=Membership.Role.ADMIN)
    city_admin = User.objects.create_user(username="bench-city-admin", password=None)
    Membership.objects.create(user=city_admin, organisation=city, role=Membership.Role.ADMIN)
    operator = User.objects.create_user(username="bench-operator", password=None, is_staff=True)
    module = consent.module_publish(actor=holder_admin, holder=holder, slug="mobility", content=dict(MODULE))
    datasets = {
        size: services.dataset_register(
            by=holder_admin,
            holder=holder,
            slug=slug,
            title=f"Trips ({size})",
            mode=Dataset.Mode.HOSTED,
            table_schema=SCHEMA,
            subject_key_field="traveller",
            personal_fields=["traveller", "origin", "destination"],
            data_categories=["dpv-pd:Location"],
        )
        for size, (slug, _) in SIZES.items()
    }
    now = timezone.now()
    terms = services.AgreementTerms(
        title="Mobility for the general interest",
        datasets=list(datasets.values()),
        purposes=[RESEARCH],
        recipient_categories=["public-authority"],
        consent_modules=["mobility"],
        approval_mode=Agreement.ApprovalMode.AUTOMATIC,
        valid_from=now - datetime.timedelta(days=1),
        valid_until=now + datetime.timedelta(days=3650),
    )
    draft = services.agreement_propose(by=holder_admin, holder=holder, terms=terms)
    signed = services.agreement_sign(by=holder_admin, agreement=draft, content_hash=draft.content_hash)
    services.agreement_countersign(by=operator, agreement=signed, content_hash=signed.content_hash)
    log("seed: organisations, module, datasets, agreement; now 100,000 citizens, links and 60,000 consents")

    rng = random.Random(20261127)
    with transaction.atomic():
        copy_rows(
            "broker_user",
            USER_COLUMNS,
            (("!", False, f"citizen-{n:06d}", "", "", "", False, True, now) for n in range(SUBJECTS)),
        )
        with connection.cursor() as cursor:
            cursor.execute("SELECT username, id FROM broker_user WHERE username LIKE 'citizen-%%'")
            citizens = {int(name.removeprefix("citizen-")): pk for name, pk in cursor.fetchall()}
        copy_rows(
            "consent_identitylink",
            ["citizen_id", "holder_id", "subject_ref", "linked_at"],
            ((citizens[n], holder.pk, subject_ref(n), now) for n in range(SUBJECTS)),
        )
        expires = now + datetime.timedelta(days=365)
        copy_rows(
            "consent_consentrecord",
            ["id", "citizen_id", "module_id", "holder_id", "purpose", "state", "given_at", "expires_at", "updated_at"],
            (
                (uuid.uuid4(), citizens[n], module.pk, holder.pk, RESEARCH, "given", now, expires, now)
                for n in sorted(rng.sample(range(SUBJECTS), CONSENTING))
            ),
        )
    for size, (_, per_subject) in SIZES.items():
        dataset = datasets[size]
        version = vault.current_version(dataset)
        aead = vault.cipher(dataset.pk, version)
        log(f"seed: {SUBJECTS * per_subject:,} records of {dataset.slug}, encrypted under its data key")

        def rows(dataset: Dataset = dataset, per_subject: int = per_subject, aead: Any = aead) -> Any:
            for day in range(per_subject):
                for n in range(SUBJECTS):
                    ref = subject_ref(n)
                    values = {
                        "day": f"2026-03-{day + 1:02d}",
                        "origin": rng.choice(STOPS),
                        "destination": rng.choice(STOPS),
                        "km": round(rng.uniform(0.3, 40.0), 1),
                        "mode": rng.choice(MODES),
                        "duration": rng.randint(3, 90),
                    }
                    plaintext = json.dumps(values, separators=(",", ":"), ensure_ascii=False).encode()
                    yield ref, vault.encrypt_payload(aead, plaintext, vault.record_aad(dataset.pk, ref))

        with transaction.atomic():
            ingest.write_records(dataset.pk, None, version, rows())
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")  # what autovacuum does after a bulk load: index-only counts

    items = [services.RequestItem(dataset=datasets[size], fields=list(FIELDS)) for size in SIZES]
    request = services.access_request_submit(
        by=city_admin,
        organisation=city,
        items=items,
        purpose=RESEARCH,
        justification="Plan the new tram line from where people actually travel, for every resident.",
        starts_at=now,
        ends_at=now + datetime.timedelta(days=300),
        retention_days=90,
    )
    assert request.grants.count() == len(SIZES), "the automatic agreement approves the request at once"
    return {"seed_seconds": round(time.perf_counter() - started)}


def seeded() -> bool:
    """Whether the database holds the whole seed (BENCH_REUSE=1 keeps it); migrates it to the working tree."""
    try:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)  # others' new columns, so that the models' queries run
        from sharing.models import Grant, Record

        for slug, per_subject in SIZES.values():
            if not Grant.objects.active().filter(dataset__slug=slug).exists():
                return False
            if Record.objects.filter(dataset__slug=slug).count() != SUBJECTS * per_subject:
                return False
        return True
    except Exception:
        return False


def prepare(reuse: bool) -> dict[str, Any]:
    """Seed (or reuse) the database; register a fresh client; return what the measurements need."""
    from django.db import connection

    from broker.models import Membership, Organisation
    from broker.oauth import services as oauth
    from sharing.delivery import use_of
    from sharing.eligibility import covering_modules
    from sharing.models import Grant

    setup: dict[str, Any]
    if reuse and seeded():
        log("reusing the seeded database (BENCH_REUSE=1), migrated to the working tree")
        setup = {"reused": True}
        with connection.cursor() as cursor:  # earlier runs' reads: keep the join as small as a first read's
            cursor.execute("TRUNCATE sharing_deliverysubject, sharing_delivery")
    else:
        setup = seed()
    city = Organisation.objects.get(slug="bench-city")
    client, secret = oauth.client_register(
        actor=Membership.objects.get(organisation=city).user,
        organisation=city,
        name=f"bench delivery {time.time():.0f}",
        auth_method="client_secret_basic",
        scopes=["grants"],
    )
    grants = {}
    for size, (slug, per_subject) in SIZES.items():
        grant = Grant.objects.select_related("dataset", "agreement").get(dataset__slug=slug)
        use = use_of(grant)
        grants[size] = {
            "grant": str(grant.pk),
            "dataset": str(grant.dataset_id),
            "holder": grant.dataset.holder_id,
            "purpose": grant.purpose,
            "modules": covering_modules(use),
            "records_stored": SUBJECTS * per_subject,
        }
    connection.close()
    return {"setup": setup, "client_id": client.client_id, "secret": secret, "grants": grants}


# --- the peer ----------------------------------------------------------------------------------------


def floor_read(grant: dict[str, Any], results: Any) -> None:
    """In a fresh process: the same rows with plain psycopg, as JSON Lines to /dev/null; count, time, peak RSS."""
    import psycopg

    # VmHWM, not ru_maxrss: a spawned child's ru_maxrss starts from its parent's peak (kept across exec).
    rss_before = memory_mib(os.getpid(), "VmHWM")
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    b64 = base64.b64encode
    count = 0
    started = time.perf_counter()
    with (
        psycopg.connect(DATABASE_URL) as conn,
        open(os.devnull, "wb") as out,
        conn.cursor(name="bench_floor") as cursor,
    ):
        cursor.execute(FLOOR_SQL, grant)
        buffer: list[str] = []
        size = 0
        while rows := cursor.fetchmany(FETCH_ROWS):
            for ref, version, payload in rows:
                line = dumps({"subject_ref": ref, "key_version": version, "payload": b64(payload).decode()})
                buffer.append(line)
                size += len(line) + 1
                if size >= FLUSH_BYTES:
                    out.write(("\n".join(buffer) + "\n").encode())
                    buffer, size = [], 0
                count += 1
        if buffer:
            out.write(("\n".join(buffer) + "\n").encode())
    seconds = time.perf_counter() - started
    results.put((count, seconds, rss_before, memory_mib(os.getpid(), "VmHWM")))


def measure_floor(context: Any, grant: dict[str, Any]) -> dict[str, Any]:
    results = context.Queue()
    arguments = {key: grant[key] for key in ("holder", "dataset", "purpose", "modules")}
    process = context.Process(target=floor_read, args=(arguments, results))
    process.start()
    count, seconds, rss_before, rss_peak = results.get(timeout=1800)
    process.join()
    return {
        "records": count,
        "seconds": round(seconds, 2),
        "records_per_s": round(count / seconds),
        "rss_before_mib": rss_before,
        "rss_peak_mib": rss_peak,
    }


# --- Tiers over HTTP ---------------------------------------------------------------------------------


def worker_pid(master: int) -> int:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    if len(children) != 1:
        raise RuntimeError(f"expected one gunicorn worker under {master}, found {children}")
    return int(children[0])


def memory_mib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return round(int(line.split()[1]) / 1024)
    raise RuntimeError(f"no {field} for process {pid}")


def measure_tiers(port: int, prepared: dict[str, Any], grant: dict[str, Any], app: str) -> dict[str, Any]:
    """A fresh 1-worker server; one full read of the grant's records; the worker's peak RSS."""
    import requests

    server = common.start_gunicorn(
        VENV_BIN / "gunicorn",
        app,
        port=port,
        env=tiers_env(port),
        log=LOGS / "delivery.log",
        workers=1,
        ready_path="/healthz",
    )
    try:
        base = f"http://127.0.0.1:{port}"
        worker = worker_pid(server.pid)
        answer = requests.post(
            f"{base}/oauth/token",
            data={"grant_type": "client_credentials", "scope": f"grant:{grant['grant']}"},
            auth=(prepared["client_id"], prepared["secret"]),
            timeout=60,
        )
        answer.raise_for_status()
        token = answer.json()["access_token"]
        rss_before = memory_mib(worker, "VmRSS")
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/x-ndjson"}
        lines = 0
        size = 0
        first = b""
        started = time.perf_counter()
        with requests.get(
            f"{base}/api/v1/grants/{grant['grant']}/records", headers=headers, stream=True, timeout=1800
        ) as response:
            headers_at = time.perf_counter()
            if response.status_code != 200:
                raise RuntimeError(f"records answered {response.status_code}: {response.text[:500]}")
            for chunk in response.iter_content(chunk_size=1 << 16):
                if not first:
                    first = chunk
                lines += chunk.count(b"\n")
                size += len(chunk)
            announced = int(response.headers["Tiers-Records"])
        seconds = time.perf_counter() - started
        rss_peak = memory_mib(worker, "VmHWM")
        rss_after = memory_mib(worker, "VmRSS")
    finally:
        common.stop_process(server)
    if lines != announced:
        raise RuntimeError(f"read {lines} lines, the response announced {announced}")
    sample = json.loads(first.split(b"\n", 1)[0])
    if sorted(sample) != sorted(["subject_pseudonym", *FIELDS]):
        raise RuntimeError(f"unexpected record shape: {sample}")
    return {
        "records": lines,
        "bytes": size,
        "seconds": round(seconds, 2),
        "first_byte_seconds": round(headers_at - started, 2),
        "records_per_s": round(lines / seconds),
        "rss_before_mib": rss_before,
        "rss_peak_mib": rss_peak,
        "rss_after_mib": rss_after,
    }


def profile(size: str) -> str:
    """cProfile of open_read + stream_jsonl in this process over one grant's records (top functions)."""
    import cProfile
    import pstats

    from django.db import connection

    from sharing import delivery
    from sharing.models import Grant

    slug = SIZES[size][0]
    grant = Grant.objects.select_related("dataset", "organisation", "agreement").get(dataset__slug=slug)
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    read = delivery.open_read(grant)
    opened = time.perf_counter()
    total = sum(len(chunk) for chunk in delivery.stream_jsonl(read))
    profiler.disable()
    ended = time.perf_counter()
    out = io.StringIO()
    out.write(
        f"open_read {opened - started:.2f} s, stream_jsonl {ended - opened:.2f} s "
        f"({read.delivery.records:,} records, {total:,} bytes), under cProfile\n"
    )
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(30)
    connection.close()
    return out.getvalue()


# --- report ------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--profile", choices=list(SIZES), help="only profile open_read + stream_jsonl in-process")
    parser.add_argument("--quick", action="store_true", help="one round, not recorded")
    options = parser.parse_args()
    rounds = 1 if options.quick else ROUNDS
    started = time.monotonic()
    LOGS.mkdir(exist_ok=True)
    port = common.free_port()
    setup_django(port)
    revision = common.revision(*MEASURED)
    prepared = prepare(reuse=bool(os.environ.get("BENCH_REUSE")) or bool(options.profile))
    if options.profile:
        print(profile(options.profile))
        return
    context = multiprocessing.get_context("spawn")
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {size: {kind: [] for kind in READERS} for size in SIZES}
    for round_ in range(1, rounds + 1):
        for size, grant in prepared["grants"].items():
            floor = measure_floor(context, grant)
            runs[size]["floor"].append(floor | {"load_average": round(os.getloadavg()[0], 1)})
            log(
                f"round {round_}, {size}: floor {floor['records']:,} records in {floor['seconds']} s, "
                f"{floor['records_per_s']:,}/s, peak RSS {floor['rss_peak_mib']} MiB"
            )
            for kind, app in (("tiers", "broker.wsgi:application"),):
                tiers = measure_tiers(port, prepared, grant, app)
                runs[size][kind].append(tiers | {"load_average": round(os.getloadavg()[0], 1)})
                log(
                    f"round {round_}, {size}: {READERS[kind]} {tiers['records']:,} records in {tiers['seconds']} s "
                    f"(first byte {tiers['first_byte_seconds']} s), {tiers['records_per_s']:,}/s, "
                    f"worker peak RSS {tiers['rss_peak_mib']} MiB ({tiers['rss_before_mib']} before)"
                )
                if tiers["records"] != floor["records"]:
                    raise RuntimeError(f"{kind} delivered {tiers['records']} records, the floor {floor['records']}")

    best = {
        size: {kind: max(kind_runs, key=lambda run: run["records_per_s"]) for kind, kind_runs in by_kind.items()}
        for size, by_kind in runs.items()
    }
    peak = {size: max(run["rss_peak_mib"] for run in runs[size]["tiers"]) for size in SIZES}
    ratios = {
        size: round(best[size]["tiers"]["records_per_s"] / best[size]["floor"]["records_per_s"], 3) for size in SIZES
    }
    rate_met = ratios["1m"] >= TARGET_RATIO
    memory_met = peak["1m"] - peak["100k"] <= RSS_FLAT_MIB
    rows = []
    for size in SIZES:
        for kind, label in READERS.items():
            run = best[size][kind]
            rows.append(
                [
                    size,
                    label,
                    f"{run['records']:,}",
                    f"{run['records_per_s']:,}",
                    run["seconds"],
                    f"{run['rss_peak_mib']} MiB",
                    ratios[size] if kind == "tiers" else "",
                ]
            )
    print()
    print(common.table(["size", "reader", "records", "records/s (best of 2)", "seconds", "peak RSS", "ratio"], rows))
    print(
        f"\ntarget Tiers >= {TARGET_RATIO:.0%} of the floor at 1M: {ratios['1m']:.2f}, "
        f"{'met' if rate_met else 'MISSED'}"
    )
    print(
        f"target worker peak RSS flat 100k -> 1M (+{RSS_FLAT_MIB} MiB at most): {peak['100k']} -> {peak['1m']} MiB, "
        f"{'met' if memory_met else 'MISSED'}"
    )
    if options.quick:
        print("\n--quick: not recorded")
        return
    line = common.record(
        NAME,
        {
            "revision": revision if revision == common.revision(*MEASURED) else f"changed during the run: {revision}",
            **prepared["setup"],
            "data": {
                "subjects": SUBJECTS,
                "consenting": CONSENTING,
                "records": {size: SUBJECTS * per_subject for size, (_, per_subject) in SIZES.items()},
                "payload_fields": 6,
                "granted_fields": FIELDS,
            },
            "server": "gunicorn, 1 sync worker, tests.settings (DEBUG off), a fresh server per read",
            "client": "requests stream=True, iter_content(64 KiB), counting lines; time from request to last byte",
            "peer": "plain psycopg, fresh process: the same consenting rows in one query (server-side cursor, 2,000 "
            "a fetch), each as a JSON line {subject_ref, key_version, payload base64} to /dev/null in 64 KiB chunks",
            "runs": runs,
            "records_per_s": {
                size: {"tiers": best[size]["tiers"]["records_per_s"], "floor": best[size]["floor"]["records_per_s"]}
                for size in SIZES
            },
            "ratios": ratios,
            "worker_rss_peak_mib": peak,
            "target": f"Tiers >= {TARGET_RATIO} x floor at 1M records; worker peak RSS flat (<= +{RSS_FLAT_MIB} MiB) "
            "from 100k to 1M",
            "rate_met": rate_met,
            "memory_met": memory_met,
            "met": rate_met and memory_met,
            "elapsed_seconds": round(time.monotonic() - started),
        },
    )
    print(f"\nrecorded in bench/results/{NAME}.jsonl ({line['date']}, {line['elapsed_seconds']} s)")


if __name__ == "__main__":
    main()
