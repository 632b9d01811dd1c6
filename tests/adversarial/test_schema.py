"""Schemathesis over the whole OpenAPI schema the app serves, in-process against its WSGI handler.

Three callers: anonymous, a demo holder's OAuth client (bearer token, every scope), and a demo
citizen's session (with its CSRF token), so that public, organisation and citizen endpoints are all
exercised. Every built-in check runs (schema-valid input may meet a domain rule's 422, see below),
and one of our own: every error is an RFC 9457 problem.
"""

from __future__ import annotations

import json
import os
import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.core.management import call_command
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from django.test import Client, override_settings
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import negative_data_rejection
from werkzeug.test import Client as WsgiClient

from broker.models import User
from sharing.models import AccessRequest, Agreement, Dataset, Grant, Upload
from tests.broker.oauth.conftest import basic

APP = get_wsgi_application()
# The schema as the app serves it (no database needed to render it).
schema = schemathesis.openapi.from_wsgi("/api/schema/", APP)
# The examples and fuzzing phases only: the coverage phase sends hundreds of boundary cases per operation
# (over five minutes for the three callers); `st run` in CI-nightly is the place for it.
schema.config.phases.coverage.enabled = False
RAW: dict[str, Any] = schema.raw_schema

EXAMPLES = settings(
    # 12 cases per operation and caller in `make test`; SCHEMATHESIS_EXAMPLES=200 for a deeper run by hand.
    max_examples=int(os.environ.get("SCHEMATHESIS_EXAMPLES", "12")),
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
PROBLEM_JSON = "application/problem+json"

# Schema-valid input refused with 422 is how domain rules answer (docs/architecture.md): a year the log
# covers, one's own datasets, a proof within the log are beyond a JSON Schema. A 400 is for malformed
# input, so schema-valid input must never get one: that is what `positive_data_acceptance` still checks.
schema.config.checks.positive_data_acceptance.expected_statuses = [
    *schema.config.checks.positive_data_acceptance.expected_statuses,
    "422",
]
# A NUL character is refused in every text field (tests/adversarial/test_injection.py checks the 400 it
# gets); the schema does not repeat that on each string, so valid cases are generated without it.
schema.config.generation.allow_x00 = False
# Known bugs: a check switched off for an operation until its fix lands, each with a strict xfail below.
KNOWN: dict[tuple[str, str], list[Any]] = {}


# --- the app, in-process, inside the test's transaction -------------------------------------------


@pytest.fixture
def keep_connection() -> Iterator[None]:
    """The WSGI handler closes the connection after each request; the test's transaction needs it open."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture(scope="module")
def demo(django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """The demo seed, once for the module, rolled back at its end (each test runs in a savepoint of it)."""
    path: Path = tmp_path_factory.mktemp("demo") / "demo-credentials.json"
    with django_db_blocker.unblock(), override_settings(DEMO_CREDENTIALS_FILE=path):
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
            credentials = json.loads(path.read_text())
            credentials["ids"] = {
                "dataset_id": [str(pk) for pk in Dataset.objects.values_list("pk", flat=True)],
                "upload_id": [str(pk) for pk in Upload.objects.values_list("pk", flat=True)],
                "agreement_id": [str(pk) for pk in Agreement.objects.values_list("pk", flat=True)],
                "request_id": [str(pk) for pk in AccessRequest.objects.values_list("pk", flat=True)],
                "grant_id": [str(pk) for pk in Grant.objects.values_list("pk", flat=True)],
            }
            yield credentials
        finally:
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)


def holder_token(demo: dict) -> str:
    """A bearer token of the demo holder Ligne Bleue's secret client, through the token endpoint."""
    entry = next(c for c in demo["clients"] if c["organisation"] == "ligne-bleue" and "client_secret" in c)
    # Through the WSGI app, not Django's test client: that one reconnects close_old_connections when done.
    response = WsgiClient(APP).post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "scope": "organisation datasets access_requests decisions link_codes",
        },
        headers={"Authorization": basic(entry["client_id"], entry["client_secret"])},
    )
    assert response.status_code == 200, response.get_data()
    return json.loads(response.get_data())["access_token"]


def citizen_session(username: str) -> dict[str, Any]:
    """Call arguments of a logged-in citizen: the session and CSRF cookies, and the CSRF header.

    The cookies go as cookies: the WSGI client sends its own cookie jar and drops a `Cookie` header.
    The header stays too, where the checks look for credentials the caller brought.
    """
    client = Client()
    client.force_login(User.objects.get(username=username))
    cookies = {"sessionid": client.cookies["sessionid"].value, "csrftoken": "x" * 32}
    cookie_header = "; ".join(f"{name}={value}" for name, value in cookies.items())
    return {"cookies": cookies, "headers": {"Cookie": cookie_header, "X-CSRFToken": cookies["csrftoken"]}}


def test_the_citizens_session_reaches_the_api_as_that_citizen(demo: dict, db: None, keep_connection: None) -> None:
    """Without this, every citizen case above would run as an anonymous caller and prove little."""
    consents = schema["/api/v1/me/consents/"]["GET"].Case().call(**citizen_session("alice"))
    assert consents.status_code == 200, consents.status_code
    assert consents.json(), "the demo's alice has consents"


def with_known_ids(case: schemathesis.Case, demo: dict) -> None:
    """Half the valid cases address real objects of the demo instead of random ids (deterministically).

    A negative case keeps its path as generated: a real id in it could make the whole request valid.
    """
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return
    for name in list(case.path_parameters or {}):
        known = demo["ids"].get(name)
        if not known:
            continue
        pick = zlib.crc32(repr(sorted(case.path_parameters.items())).encode())
        if pick % 2:
            case.path_parameters[name] = known[pick % len(known)]


# --- checks of our own ------------------------------------------------------------------------------


def problems_are_rfc9457(ctx: Any, response: Any, case: schemathesis.Case) -> bool | None:
    """Every 4xx/5xx is an RFC 9457 problem whose status is the response's."""
    if response.status_code < 400:
        return None
    content_type = (response.headers.get("content-type") or [""])[0]
    assert content_type.startswith(PROBLEM_JSON), f"{response.status_code} answered as {content_type!r}"
    body = json.loads(response.content)
    assert isinstance(body, dict), body
    assert isinstance(body.get("type"), str), body
    assert isinstance(body.get("title"), str), body
    assert body.get("status") == response.status_code, body
    return None


def spoils_cookies(case: schemathesis.Case) -> bool:
    return case.meta is not None and case.meta.is_negative_at(ParameterLocation.COOKIE)


def run(case: schemathesis.Case, **kwargs: Any) -> None:
    excluded = KNOWN.get((case.method.upper(), case.path), [])
    if "cookies" in kwargs and spoils_cookies(case):
        # The case left out or spoiled the session cookie, and the caller's own session stands in for it:
        # what the server then gets may be a valid request. Cases that spoil anything else run every check.
        excluded = [*excluded, negative_data_rejection]
    extra = [problems_are_rfc9457]
    case.call_and_validate(excluded_checks=excluded, additional_checks=extra, **kwargs)


# --- the three callers ------------------------------------------------------------------------------


@schema.parametrize()
@EXAMPLES
def test_anonymous_callers_get_only_documented_answers(
    case: schemathesis.Case, db: None, keep_connection: None
) -> None:
    run(case)


@schema.parametrize()
@EXAMPLES
def test_a_holders_client_gets_only_documented_answers(
    case: schemathesis.Case, demo: dict, db: None, keep_connection: None
) -> None:
    with_known_ids(case, demo)
    run(case, headers={"Authorization": f"Bearer {holder_token(demo)}"})


@schema.parametrize()
@EXAMPLES
def test_a_citizens_session_gets_only_documented_answers(
    case: schemathesis.Case, demo: dict, db: None, keep_connection: None
) -> None:
    with_known_ids(case, demo)
    run(case, **citizen_session("alice"))


# --- the schema itself --------------------------------------------------------------------------------


def test_the_schema_names_a_relative_server() -> None:
    servers = RAW.get("servers") or []
    assert servers, "the schema names no server"
    for server in servers:
        assert server["url"].startswith("/"), server
        assert "//" not in server["url"], server


def _patterns(node: Any, where: str = "#") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "pattern" and isinstance(value, str):
                yield where, value
            else:
                yield from _patterns(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _patterns(value, f"{where}/{index}")


# Python-only regex syntax that ECMA-262 rejects or reads differently.
PYTHON_ONLY = [r"(?P<", r"(?P=", r"\A", r"\Z", r"(?#", r"(?i)", r"(?m)", r"(?s)", r"(?x)", r"(?a)", r"(?u)", r"(?L)"]
PATTERNS = list(_patterns(RAW))


def test_the_schema_has_patterns_to_check() -> None:
    assert PATTERNS, "no pattern in the schema: this check would pass vacuously"


@pytest.mark.parametrize(("where", "pattern"), PATTERNS, ids=[where for where, _ in PATTERNS])
def test_every_pattern_is_an_ecma262_regex(where: str, pattern: str) -> None:
    re.compile(pattern)
    for construct in PYTHON_ONLY:
        assert construct not in pattern, f"{where}: {pattern!r} uses the Python-only {construct!r}"
    assert not re.search(r"\\[zA]", pattern.replace("\\\\", "")), f"{where}: {pattern!r}"


# --- what these checks found once, each reproduced by hand ------------------------------------------


def test_an_agreement_without_predecessor_matches_the_schema() -> None:
    predecessor = RAW["components"]["schemas"]["Agreement"]["properties"]["predecessor"]
    assert predecessor.get("nullable") is True or "null" in str(predecessor.get("type")), predecessor


@pytest.mark.parametrize("path", ["/api/v1/agreements/", "/api/v1/agreements/{agreement_id}"])
def test_public_agreement_reads_are_documented_as_public(path: str) -> None:
    assert {} in RAW["paths"][path]["get"].get("security", [{}]), RAW["paths"][path]["get"].get("security")


@pytest.mark.parametrize("page_size", ["0", "-1", "x", "1e3"])
def test_an_invalid_page_size_is_refused(db: None, page_size: str) -> None:
    response = Client().get("/api/v1/organisations/", {"page_size": page_size})
    assert response.status_code in (400, 422), response.status_code


def test_every_operation_documents_its_problem_responses() -> None:
    silent = [
        f"{method.upper()} {path}"
        for path, operations in RAW["paths"].items()
        for method, operation in operations.items()
        if not any(str(code).startswith("4") for code in operation.get("responses", {}))
    ]
    assert not silent, f"{len(silent)} operations document no 4xx: {silent[:5]}…"


# --- stateful: sequences that follow the links between operations ----------------------------------

# Links inferred from the schema (an `id` one operation answers, a path parameter another takes): 139
# transitions, so a dataset just registered is then read, uploaded to, withdrawn; a consent given is
# paused, resumed, withdrawn, its receipt fetched.
# Valid input only: a sequence that is refused at its first step reaches no link.
sequences_schema = schemathesis.openapi.from_wsgi("/api/schema/", APP)
sequences_schema.config.generation.modes = [GenerationMode.POSITIVE]
sequences_schema.config.generation.allow_x00 = False
sequences_schema.config.checks.positive_data_acceptance.expected_statuses = (
    schema.config.checks.positive_data_acceptance.expected_statuses
)
StateMachine = sequences_schema.as_state_machine()
SEQUENCES = settings(
    max_examples=int(os.environ.get("SCHEMATHESIS_SEQUENCES", "15")),
    stateful_step_count=8,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


def run_sequences(caller: dict[str, Any]) -> None:
    class Sequences(StateMachine):  # type: ignore[misc,valid-type]
        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return caller

        def validate_response(self, response: Any, case: schemathesis.Case, *args: Any, **kwargs: Any) -> None:
            # The call's headers go to the checks too: the credentials are the caller's, not generated ones.
            case.validate_response(
                response, headers=caller["headers"], additional_checks=[problems_are_rfc9457], transport_kwargs=kwargs
            )

    Sequences.run(settings=SEQUENCES)


def test_a_holders_client_follows_links_and_gets_only_documented_answers(
    demo: dict, db: None, keep_connection: None
) -> None:
    run_sequences({"headers": {"Authorization": f"Bearer {holder_token(demo)}"}})


def test_a_citizens_session_follows_links_and_gets_only_documented_answers(
    demo: dict, db: None, keep_connection: None
) -> None:
    run_sequences(citizen_session("alice"))
