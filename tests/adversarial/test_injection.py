"""Hostile values in every filter and query parameter of the API's lists: a 4xx, or a normal 200, never a 500.

A 200 must not return more than the caller sees without the filter: exact filters (state,
holder, verb, event_type…) given garbage match nothing; paging parameters return a subset.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from rest_framework.test import APIClient

from broker.security.twofactor import VERIFIED_SESSION_KEY
from tests.adversarial.world import World, build, rolled_back

PAYLOADS = {
    "sql-or": "' OR 1=1 --",
    "sql-union": "x' UNION SELECT username, password FROM broker_user --",
    "sql-stacked": "1; DROP TABLE broker_user; --",
    "nul": "volta\x00",
    "percent-nul": "%00",
    "long": "A" * 20_000,
    "unicode": "ü𝔘\u202e\ufeff日本",
    "lone-surrogate-escape": "\\ud800",
    "negative": "-1",
    "huge-int": "9" * 40,
    "float": "1e308",
    "template": "{{7*7}}${7*7}",
    "path": "../../etc/passwd",
    "json": '{"$ne": null}',
}
# (caller, path, parameter, exact): exact filters given garbage match nothing; the others page.
PARAMETERS = [
    ("hana", "/api/v1/access-requests/", "state", True),
    ("hana", "/api/v1/access-requests/", "cursor", False),
    ("hana", "/api/v1/access-requests/", "page_size", False),
    ("hana", "/api/v1/datasets/", "holder", True),
    ("hana", "/api/v1/datasets/", "page", False),
    ("hana", "/api/v1/grants/", "cursor", False),
    ("hana", "/api/v1/agreements/", "cursor", False),
    ("anon", "/api/v1/organisations/", "cursor", False),
    ("anon", "/api/v1/organisations/", "page_size", False),
    ("hana", "/api/v1/organisations/me", "organisation", False),
    ("hana", "/api/v1/clients/", "organisation", False),
    ("hana", "/api/v1/webhooks/", "organisation", False),
    ("olga", "/api/v1/webhooks/deliveries/", "state", True),
    ("olga", "/api/v1/webhooks/deliveries/", "event_type", True),
    ("olga", "/api/v1/webhooks/deliveries/", "organisation", False),
    ("anon", "/api/v1/audit/entries/", "verb", True),
    ("anon", "/api/v1/audit/entries/", "subject", True),
    ("anon", "/api/v1/audit/entries/", "since", False),
    ("anon", "/api/v1/audit/entries/", "until", False),
    ("anon", "/api/v1/audit/entries/", "cursor", False),
    ("anon", "/api/v1/audit/checkpoints/", "cursor", False),
    ("anon", "/api/v1/audit/proofs/inclusion", "leaf_index", False),
    ("anon", "/api/v1/audit/proofs/inclusion", "tree_size", False),
    ("anon", "/api/v1/audit/proofs/consistency", "first", False),
    ("anon", "/api/v1/audit/proofs/consistency", "second", False),
    ("anon", "/api/v1/reports/records", "year", False),
    ("anon", "/api/v1/register/dossier", "format", False),
    ("anon", "/api/v1/catalog", "format", False),
    ("anon", "/api/v1/audit/checkpoints/latest", "format", False),
    ("alice", "/api/v1/me/consents/", "format", False),
]
# Bugs found here: (path, parameter, payload) -> reason, as a strict xfail; the fix shows as a failure.
KNOWN_BUGS: dict[tuple[str, str, str], str] = {}


@pytest.fixture(scope="module")
def world(django_db_setup: None, django_db_blocker: Any) -> Iterator[World]:
    with rolled_back(django_db_blocker):
        yield build()


def _api(world: World, caller: str) -> APIClient:
    api = APIClient()
    if caller != "anon":
        api.force_login(world.users[caller])
        session = api.session
        session[VERIFIED_SESSION_KEY] = True
        session.save()
    return api


def _rows(body: Any) -> list[str] | None:
    if isinstance(body, dict) and isinstance(body.get("results"), list):
        return [repr(sorted(item.items())) if isinstance(item, dict) else repr(item) for item in body["results"]]
    return None


def _cases() -> Iterator[Any]:
    for caller, path, parameter, exact in PARAMETERS:
        for name, value in PAYLOADS.items():
            bug = KNOWN_BUGS.get((path, parameter, name))
            marks = [pytest.mark.xfail(strict=True, reason=bug)] if bug else []
            yield pytest.param(caller, path, parameter, exact, value, id=f"{path}?{parameter}={name}", marks=marks)


@pytest.mark.parametrize(("caller", "path", "parameter", "exact", "value"), list(_cases()))
def test_a_hostile_parameter_is_refused_or_filters_to_nothing_more(
    world: World, db: None, caller: str, path: str, parameter: str, exact: bool, value: str
) -> None:
    api = _api(world, caller)
    baseline = api.get(path, HTTP_ACCEPT="application/json")
    response = api.get(path, {parameter: value}, HTTP_ACCEPT="application/json")
    assert response.status_code < 500, response.content[:300]
    if response.status_code >= 400:
        assert response["Content-Type"].startswith("application/problem+json")
        return
    if not response["Content-Type"].startswith("application/json"):
        return
    rows = _rows(response.json())
    if rows is None:
        return
    if exact:
        assert rows == [], f"{parameter}={value[:40]!r} matched {len(rows)} rows"
    elif baseline.status_code == 200 and (seen := _rows(baseline.json())) is not None:
        assert set(rows) <= set(seen) or len(seen) >= 50, "rows the caller does not see without the parameter"


def test_a_hostile_path_segment_is_not_found(world: World, db: None) -> None:
    api = _api(world, "hana")
    for name, value in PAYLOADS.items():
        if "\x00" in value or name == "long":
            continue
        response = api.get(f"/api/v1/datasets/{value.replace('/', '%2F')}")
        assert response.status_code == 404, (name, response.status_code)
