"""Who may call which API on which object: one table, generated into one test per cell.

Each row is an endpoint (method and path template), the kind of object it addresses, and the
outcome expected for every caller. Callers are people with a session (a citizen, the holder
Volta's admin, reviewer and data steward, the data user Marlieux's admin, an operator), an
OAuth client of the row's organisation with the row's scope and one without it, and nobody.
A column ending in `_x` addresses the same kind of object belonging to the other side
(another organisation's, another citizen's): see tests/adversarial/world.py.

Outcomes: 401 anonymous on authenticated endpoints; 404 for what the caller may not see; 403 for
what it sees but may not do; the success status for what it may. Following docs/sharing.md,
"sees" means the organisation's own objects: another organisation's public dataset or agreement
still answers 404 to an outsider who tries to act on it (the organisation is not theirs).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from broker import services as broker_services
from broker.security.twofactor import VERIFIED_SESSION_KEY
from tests.adversarial.world import COUNTERPART, World, build, rolled_back
from tests.factories import PASSWORD
from tests.sharing.conftest import JUSTIFICATION, MODULE, PUBLIC_BENEFIT, RESEARCH, TRIPS_SCHEMA, trips_csv

Body = Callable[[World, str, str], Any]  # (world, object id, caller's home organisation) -> body

PEOPLE = {
    "citizen": "alice",
    "h_admin": "hana",
    "reviewer": "rita",
    "steward": "stan",
    "u_admin": "ugo",
    "operator": "olga",
}
HOME = {"hana": "volta", "rita": "volta", "stan": "volta", "ugo": "marlieux"}
CITIZEN_KINDS = {"consent", "rights", "leaf_alice"}
WITH_OBJECT = [
    "anon", "citizen", "citizen_x", "h_admin", "h_admin_x", "reviewer", "reviewer_x", "steward", "steward_x",
    "u_admin", "u_admin_x", "client", "client_x", "client_noscope", "operator",
]  # fmt: skip
WITHOUT_OBJECT = [c for c in WITH_OBJECT if not c.endswith("_x")]


@dataclass(frozen=True)
class Row:
    method: str
    path: str
    kind: str | None  # the object `{id}` stands for; None for collections
    expect: dict[str, int]
    via: tuple[str, str] = ("volta", "organisation")  # the row's OAuth client: organisation, scope
    body: Body | None = None
    content_type: str = "application/json"


def row(method: str, path: str, kind: str | None, *, via: tuple[str, str] = ("volta", "organisation"),
        body: Body | None = None, content_type: str = "application/json", **expect: int) -> Row:  # fmt: skip
    columns = WITH_OBJECT if kind else WITHOUT_OBJECT
    missing = set(columns) - set(expect)
    extra = set(expect) - set(columns)
    assert not missing, f"{method} {path}: no expectation for {missing}"
    assert not extra, f"{method} {path}: {extra} do not apply"
    return Row(method, path, kind, expect, via, body, content_type)


def everyone(status: int, *, kind: str | None = None, anon: int | None = None, **overrides: int) -> dict[str, int]:
    """The same answer for every caller, but those named."""
    columns = WITH_OBJECT if kind else WITHOUT_OBJECT
    return dict.fromkeys(columns, status) | ({"anon": anon} if anon is not None else {}) | overrides


def reason(world: World, obj: str, home: str) -> dict[str, str]:
    return {"reason": "Checked by the authorization matrix."}


def signature(world: World, obj: str, home: str) -> dict[str, str]:
    return {"content_hash": world.content_hashes.get(obj, "0" * 64)}


def _own_dataset(world: World, home: str) -> str:
    return world.objects["dataset"].get(home, world.objects["dataset"]["volta"])


def agreement_terms(world: World, obj: str, home: str) -> dict[str, Any]:
    return {
        "title": "Matrix terms",
        "datasets": [_own_dataset(world, home)],
        "purposes": [RESEARCH],
        "recipient_categories": ["research-body"],
        "consent_modules": ["mobility"],
        "approval_mode": "holder",
        "valid_from": "2026-01-01T00:00:00Z",
        "valid_until": "2027-01-01T00:00:00Z",
    }


def access_request(world: World, obj: str, home: str) -> dict[str, Any]:
    return {
        "items": [{"dataset": world.objects["dataset"]["volta"], "fields": ["day", "origin"]}],
        "purpose": RESEARCH,
        "justification": JUSTIFICATION,
        "starts_at": "2026-12-01T00:00:00Z",
        "ends_at": "2027-01-15T00:00:00Z",
        "retention_days": 30,
    }


def dataset_registration(world: World, obj: str, home: str) -> dict[str, Any]:
    return {
        "slug": "matrix-set",
        "title": "Matrix set",
        "mode": "hosted",
        "table_schema": TRIPS_SCHEMA,
        "subject_key_field": "traveller",
        "personal_fields": ["traveller"],
        "data_categories": ["dpv-pd:Location"],
    }


def module_content(world: World, obj: str, home: str) -> dict[str, Any]:
    return {"slug": "matrix-module", **MODULE}


def _siren() -> str:
    return next(str(n) for n in range(123456780, 123456800) if broker_services.siren_is_valid(str(n)))


def application(world: World, obj: str, home: str) -> dict[str, Any]:
    return {
        "slug": "matrix-org",
        "name": "Matrix Org",
        "legal_identifier": _siren(),
        "identifier_scheme": "siren",
        "country": "FR",
        "kind": "user",
        "recipient_category": "research-body",
        "contact_email": "contact@matrix.example",
    }


def decision(world: World, obj: str, home: str) -> dict[str, Any]:
    return {"grant": obj, "subjects": ["subject-alice"]}


# Who sees what, reused below.
CITIZEN_ONLY = everyone(403, anon=401, citizen=200)
CITIZEN_ONLY_OBJ = everyone(403, kind="x", anon=401, citizen=200, citizen_x=404)

# Placeholders in paths: {id} is the object of the row's kind.
ROWS: list[Row] = [
    # --- organisations --------------------------------------------------------------------------
    row("GET", "/api/v1/organisations/", None, **everyone(200)),
    row("POST", "/api/v1/organisations/", None, body=application,
        **everyone(201, anon=401, client=403, client_noscope=403)),
    row("GET", "/api/v1/organisations/me", None,
        **everyone(200, anon=401, citizen=403, operator=403, client_noscope=403)),
    row("PATCH", "/api/v1/organisations/me", None, body=lambda w, o, h: {"name": "Renamed"},
        **everyone(200, anon=401, citizen=403, operator=403, reviewer=403, steward=403, client=403,
                   client_noscope=403)),
    # --- OAuth clients: a person's session only ---------------------------------------------------
    row("GET", "/api/v1/clients/", None,
        **everyone(200, anon=401, citizen=403, operator=403, client=403, client_noscope=403)),
    row("POST", "/api/v1/clients/", None, body=lambda w, o, h: {"name": "new", "auth_method": "client_secret_basic"},
        **everyone(201, anon=401, citizen=403, operator=403, reviewer=403, steward=403, client=403,
                   client_noscope=403)),
    *[
        row("POST", f"/api/v1/clients/{{id}}/{action}", "client", body=lambda w, o, h: {},
            **everyone(404, kind="x", anon=401, h_admin=200, u_admin=200, reviewer=403, steward=403, operator=200,
                       client=403, client_x=403, client_noscope=403))
        for action in ("rotate", "disable")
    ],
    # --- webhooks ---------------------------------------------------------------------------------
    row("GET", "/api/v1/webhooks/", None, via=("volta", "webhooks"),
        **everyone(200, anon=401, citizen=403, operator=403, reviewer=403, steward=403, client_noscope=403)),
    row("POST", "/api/v1/webhooks/", None, via=("volta", "webhooks"),
        body=lambda w, o, h: {"url": "https://hooks.matrix.example/in"},
        **everyone(201, anon=401, citizen=403, operator=403, reviewer=403, steward=403, client_noscope=403)),
    row("GET", "/api/v1/webhooks/deliveries/", None, via=("volta", "webhooks"),
        **everyone(200, anon=401, citizen=403, reviewer=403, steward=403, client_noscope=403)),
    row("POST", "/api/v1/webhooks/deliveries/{id}/replay", "delivery", via=("volta", "webhooks"),
        **everyone(404, kind="x", anon=401, h_admin=200, u_admin=200, client=200, operator=200)),
    row("POST", "/api/v1/webhooks/{id}/disable", "endpoint", via=("volta", "webhooks"),
        **everyone(404, kind="x", anon=401, h_admin=200, u_admin=200, client=200, operator=200)),
    row("POST", "/api/v1/webhooks/acknowledgements", None, via=("volta", "webhooks"),
        body=lambda w, o, h: {"event": "00000000-0000-0000-0000-000000000000"},
        **everyone(422, anon=401, citizen=403, operator=403, reviewer=403, steward=403, client_noscope=403)),
    row("POST", "/api/v1/grants/{id}/deletions", "grant", via=("marlieux", "organisation webhooks"),
        body=lambda w, o, h: {"event": "00000000-0000-0000-0000-000000000000", "subject_pseudonym": "p"},
        **everyone(404, kind="x", anon=401, u_admin=422, client=422, client_noscope=404, operator=403)),
    # --- datasets and uploads ---------------------------------------------------------------------
    row("GET", "/api/v1/datasets/", None, via=("volta", "datasets"), **everyone(200, anon=401)),
    row("POST", "/api/v1/datasets/", None, via=("volta", "datasets"), body=dataset_registration,
        **everyone(201, anon=401, citizen=403, operator=403, reviewer=403, u_admin=403, client_noscope=403)),
    row("GET", "/api/v1/datasets/{id}", "dataset", via=("volta", "datasets"), **everyone(200, kind="x", anon=401)),
    *[
        row("POST", f"/api/v1/datasets/{{id}}/{action}", "dataset", via=("volta", "datasets"), body=body,
            **everyone(404, kind="x", anon=401, h_admin=status, steward=status, client=status, reviewer=403,
                       operator=403, client_noscope=403))
        for action, body, status in (
            ("withdraw", reason, 200),
            ("records/delete", lambda w, o, h: {"subject_refs": ["t1"]}, 200),
            ("rotate-key", None, 202),
        )
    ],
    row("GET", "/api/v1/datasets/{id}/uploads/", "dataset", via=("volta", "datasets"),
        **everyone(404, kind="x", anon=401, h_admin=200, reviewer=200, steward=200, client=200, operator=200)),
    row("POST", "/api/v1/datasets/{id}/uploads/", "dataset", via=("volta", "datasets"),
        body=lambda w, o, h: trips_csv([("t9", "2026-02-01", "A", "B", 1.0)]), content_type="text/csv",
        **everyone(404, kind="x", anon=401, h_admin=202, steward=202, client=202, reviewer=403, operator=403,
                   client_noscope=403)),
    # ({id} is the upload; its dataset is found from it: see _path)
    row("GET", "/api/v1/datasets/{dataset}/uploads/{id}", "upload", via=("volta", "datasets"),
        **everyone(404, kind="x", anon=401, h_admin=200, reviewer=200, steward=200, client=200, operator=200)),
    # --- agreements -------------------------------------------------------------------------------
    row("GET", "/api/v1/agreements/", None, **everyone(200)),
    row("POST", "/api/v1/agreements/", None, body=agreement_terms,
        **everyone(201, anon=401, citizen=403, operator=403, reviewer=403, steward=403, u_admin=422, client=403,
                   client_noscope=403)),
    row("GET", "/api/v1/agreements/{id}", "agreement", **everyone(200, kind="x")),
    row("GET", "/api/v1/agreements/{id}/odrl", "agreement", **everyone(200, kind="x")),
    row("GET", "/api/v1/agreements/{id}", "draft",
        **everyone(404, kind="x", h_admin=200, reviewer=200, steward=200, client=200, operator=200)),
    row("POST", "/api/v1/agreements/{id}/versions", "agreement", body=agreement_terms,
        **everyone(404, kind="x", anon=401, h_admin=201, reviewer=403, steward=403, operator=403, client=403,
                   client_noscope=403)),
    row("POST", "/api/v1/agreements/{id}/sign", "draft", body=signature,
        **everyone(404, kind="x", anon=401, h_admin=200, reviewer=403, steward=403, operator=403, client=403)),
    row("POST", "/api/v1/agreements/{id}/countersign", "signed", body=signature,
        **everyone(404, kind="x", anon=401, h_admin=403, reviewer=403, steward=403, operator=200, client=403)),
    row("POST", "/api/v1/agreements/{id}/terminate", "agreement", body=reason,
        **everyone(404, kind="x", anon=401, h_admin=200, reviewer=403, steward=403, operator=200, client=403,
                   client_x=403, client_noscope=403)),
    # --- access requests and grants ---------------------------------------------------------------
    row("GET", "/api/v1/access-requests/", None, via=("marlieux", "access_requests"), **everyone(200, anon=401)),
    row("POST", "/api/v1/access-requests/", None, via=("marlieux", "access_requests"), body=access_request,
        **everyone(201, anon=401, citizen=403, operator=403, reviewer=403, h_admin=422, steward=422,
                   client_noscope=403)),
    row("GET", "/api/v1/access-requests/{id}", "request", via=("marlieux", "access_requests"),
        **everyone(404, kind="x", anon=401, h_admin=200, reviewer=200, steward=200, u_admin=200, client=200,
                   operator=200)),
    *[
        row("POST", f"/api/v1/access-requests/{{id}}/{action}", "request", via=("marlieux", "access_requests"),
            body=reason,
            **everyone(404, kind="x", anon=401, h_admin=200, reviewer=200, steward=403, u_admin=403, client=403,
                       operator=403))
        for action in ("approve", "reject")
    ],
    row("GET", "/api/v1/grants/", None, via=("marlieux", "access_requests"), **everyone(200, anon=401)),
    row("GET", "/api/v1/grants/{id}", "grant", via=("marlieux", "access_requests"),
        **everyone(404, kind="x", anon=401, h_admin=200, reviewer=200, steward=200, u_admin=200, client=200,
                   operator=200)),
    row("POST", "/api/v1/grants/{id}/revoke", "grant", via=("marlieux", "access_requests"), body=reason,
        **everyone(404, kind="x", anon=401, h_admin=200, reviewer=403, steward=403, u_admin=403, client=403,
                   operator=200)),
    row("GET", "/api/v1/grants/{id}/records", "grant", via=("marlieux", "grant:"),
        **everyone(401, kind="x", client=200, client_x=404, client_noscope=404)),
    row("GET", "/api/v1/grants/{id}/results", "grant_filed", via=("marlieux", "access_requests"),
        **everyone(404, kind="x", anon=401, h_admin=200, reviewer=200, steward=200, u_admin=200, client=200,
                   operator=200)),
    row("POST", "/api/v1/grants/{id}/results", "grant_ended", via=("marlieux", "access_requests"),
        body=lambda w, o, h: {"summary": JUSTIFICATION, "data_deleted": True},
        **everyone(404, kind="x", anon=401, h_admin=403, reviewer=403, steward=403, u_admin=201, client=201,
                   operator=403)),
    # --- federated decisions: the holder's client with `decisions` only ---------------------------
    row("POST", "/api/v1/decisions", "fgrant", via=("volta", "decisions"), body=decision,
        **everyone(401, kind="x", client=200, client_x=404, client_noscope=403)),
    row("POST", "/api/v1/decisions/receipts", None, via=("volta", "decisions"),
        body=lambda w, o, h: {"receipt": "a.b.c"}, **everyone(401, client=422, client_noscope=403)),
    # --- consent: holders ---------------------------------------------------------------------------
    row("POST", "/api/v1/link-codes/", None, via=("volta", "link_codes"),
        body=lambda w, o, h: {"subject_ref": "matrix-subject"},
        **everyone(201, anon=401, citizen=403, operator=403, reviewer=403, u_admin=403, client_noscope=403)),
    row("GET", "/api/v1/consent-modules/", None, **everyone(200)),
    row("POST", "/api/v1/consent-modules/", None, via=("volta", "consent_modules"), body=module_content,
        **everyone(201, anon=401, citizen=403, operator=403, reviewer=403, u_admin=403, client_noscope=403)),
    # --- consent: citizens, by session only ---------------------------------------------------------
    row("GET", "/api/v1/me/consents/", None, **CITIZEN_ONLY),
    row("POST", "/api/v1/me/consents/", None,
        body=lambda w, o, h: {"module": int(w.objects["module"]["alice"]), "purposes": [PUBLIC_BENEFIT]},
        **everyone(403, anon=401, citizen=201)),
    row("GET", "/api/v1/me/consents/{id}", "consent", **CITIZEN_ONLY_OBJ),
    *[
        row("POST", f"/api/v1/me/consents/{{id}}/{action}", "consent", **CITIZEN_ONLY_OBJ)
        for action in ("withdraw", "pause", "renew")
    ],
    row("POST", "/api/v1/me/consents/{id}/resume", "consent", **CITIZEN_ONLY_OBJ),  # resuming a given one: no-op
    row("GET", "/api/v1/consents/{id}/receipt", "consent", **CITIZEN_ONLY_OBJ),
    row("GET", "/api/v1/me/consents/{id}/kantara", "consent", **CITIZEN_ONLY_OBJ),
    row("GET", "/api/v1/me/export", None, **CITIZEN_ONLY),
    row("POST", "/api/v1/me/erasure", None, body=lambda w, o, h: {"password": PASSWORD},
        **everyone(403, anon=401, citizen=200)),
    row("GET", "/api/v1/me/rights/", None, **CITIZEN_ONLY),
    row("POST", "/api/v1/me/rights/", None, body=lambda w, o, h: {"kind": "objection"},
        **everyone(403, anon=401, citizen=201)),
    row("GET", "/api/v1/me/rights/{id}", "rights", **CITIZEN_ONLY_OBJ),
    row("GET", "/api/v1/me/accesses/", None, **CITIZEN_ONLY),
    # --- audit, register and reports: public ------------------------------------------------------
    row("GET", "/api/v1/audit/", None, **everyone(200)),
    row("GET", "/api/v1/audit/checkpoints/latest", None, **everyone(200)),
    row("GET", "/api/v1/audit/checkpoints/", None, **everyone(200)),
    row("GET", "/api/v1/audit/entries/", None, **everyone(200)),
    row("GET", "/api/v1/audit/proofs/inclusion?leaf_index=0&tree_size=1", None, **everyone(200)),
    row("GET", "/api/v1/audit/proofs/consistency?first=1&second=2", None, **everyone(200)),
    row("GET", "/api/v1/audit/entries/{id}", "leaf_alice", **everyone(200, kind="x")),
    row("GET", "/api/v1/register", None, **everyone(200)),
    row("GET", "/api/v1/register/dossier", None, **everyone(200)),
    row("GET", "/api/v1/reports/records?year=2026", None, **everyone(200)),
    row("GET", "/api/v1/reports/annual/{year}", None, **everyone(200)),
    row("GET", "/api/v1/catalog", None, **everyone(200)),
]  # fmt: skip

# Known bugs: (method, path, caller) -> what is wrong, as a strict xfail; a fix turns it into a failure to remove.
KNOWN_BUGS: dict[tuple[str, str, str], str] = {}


def cells() -> Iterator[Any]:
    for r in ROWS:
        for caller, status in r.expect.items():
            marks = []
            bug = KNOWN_BUGS.get((r.method, r.path, caller))
            if bug:
                marks.append(pytest.mark.xfail(strict=True, reason=bug))
            yield pytest.param(r, caller, status, id=f"{r.method} {r.path} {caller}", marks=marks)


@pytest.fixture(scope="module")
def world(django_db_setup: None, django_db_blocker: Any) -> Iterator[World]:
    with rolled_back(django_db_blocker):
        built = build()
        for r in ROWS:  # minted here, outside any test's savepoint, so that no test rolls them back
            built.token(*r.via)
            built.token(r.via[0], _noscope(r))
        yield built


def _noscope(r: Row) -> str:
    """A scope of the row's organisation that covers nothing the row does."""
    return "webhooks" if r.via[1] == "link_codes" else "link_codes"


def _home(r: Row, caller: str) -> str:
    """The organisation (or citizen) whose object the caller addresses."""
    base = caller.removesuffix("_x")
    if r.kind in CITIZEN_KINDS:
        home = "alice"
        return "bob" if caller.endswith("_x") else home
    home = r.via[0] if base.startswith("client") else HOME.get(PEOPLE.get(base, ""), "volta")
    return COUNTERPART[home] if caller.endswith("_x") else home


def _path(r: Row, world: World, home: str) -> tuple[str, str]:
    if r.kind is None:
        return r.path.replace("{year}", str(timezone.now().year)), ""
    obj = world.objects[r.kind][home]
    path = r.path.replace("{id}", obj)
    if "{dataset}" in path:
        path = path.replace("{dataset}", world.objects["dataset"][home])
    return path, obj


def _caller(world: World, r: Row, caller: str) -> APIClient:
    api = APIClient()
    base = caller.removesuffix("_x")
    if base in PEOPLE:
        api.force_login(world.users[PEOPLE[base]])
        session = api.session
        session[VERIFIED_SESSION_KEY] = True  # admins' second factor, done
        session.save()
    elif base == "client":
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {world.token(*r.via)}")
    elif base == "client_noscope":
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {world.token(r.via[0], _noscope(r))}")
    return api


@pytest.mark.parametrize(("r", "caller", "expected"), list(cells()))
def test_the_caller_gets_exactly_the_expected_answer(
    world: World, db: None, r: Row, caller: str, expected: int
) -> None:
    home = _home(r, caller)
    path, obj = _path(r, world, home)
    api = _caller(world, r, caller)
    body = r.body(world, obj, home) if r.body else None
    if r.content_type == "application/json":
        response = api.generic(r.method, path, data=_json(body), content_type="application/json")
    else:
        response = api.generic(r.method, path, data=body or b"", content_type=r.content_type)
    content = b"".join(response.streaming_content) if response.streaming else response.content
    assert response.status_code == expected, f"{caller} → {response.status_code}: {content[:300]!r}"
    if expected >= 400:
        assert response["Content-Type"].startswith("application/problem+json"), response["Content-Type"]


def _json(body: Any) -> str:
    import json

    return "" if body is None else json.dumps(body)


@pytest.mark.parametrize(("caller", "readable"), [("alice", True), ("bob", False), ("hana", False), ("olga", True)])
def test_an_audit_entry_about_a_citizen_is_readable_by_them_and_operators_only(
    world: World, db: None, caller: str, readable: bool
) -> None:
    api = APIClient()
    api.force_login(world.users[caller])
    entry = api.get(f"/api/v1/audit/entries/{world.objects['leaf_alice']['alice']}").json()
    assert entry["redacted"] is not readable
    assert (entry["event"] is not None) is readable


def test_the_matrix_covers_every_api_route() -> None:
    """A new API route without a row fails here: add it to the table."""
    from django.urls import URLPattern, URLResolver, get_resolver

    def walk(patterns: list[Any], prefix: str) -> Iterator[str]:
        for p in patterns:
            if isinstance(p, URLResolver):
                yield from walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern):
                yield prefix + str(p.pattern)

    routes = {r for r in walk(get_resolver().url_patterns, "/") if r.startswith("/api/v1/") and "(?P<path>" not in r}
    covered = {_template(r.path) for r in ROWS}
    missing = {route for route in routes if _template(route) not in covered}
    assert not missing, sorted(missing)


def _template(path: str) -> str:
    import re

    path = path.split("?")[0].lstrip("^").rstrip("$")
    return re.sub(r"<[^>]+>|\{[^}]+\}", "*", path)
