"""Entries: public ones for everybody, personal ones for their citizen and operators only."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from broker.audit import sequencer
from tests.broker.audit.conftest import write_entries
from tests.conftest import client_for


@pytest.fixture
def mixed_log(alice):  # type: ignore[no-untyped-def]
    write_entries(2, verb="organisation.verified")
    write_entries(1, citizen_id=alice.pk, verb="consent.withdrawn")
    sequencer.sequence()


def test_anyone_reads_public_entries_in_full(api: APIClient, mixed_log) -> None:  # type: ignore[no-untyped-def]
    entry = api.get("/api/v1/audit/entries/0").json()
    assert entry["redacted"] is False
    assert entry["verb"] == "organisation.verified"
    assert entry["event"]["subject"] == "thing:0"


@pytest.mark.parametrize("persona", [None, "bob", "stranger", "holder_admin"])
def test_others_see_only_the_leaf_hash_of_a_citizens_entry(request, mixed_log, persona) -> None:  # type: ignore[no-untyped-def]
    client = client_for(request.getfixturevalue(persona)) if persona else APIClient()
    entry = client.get("/api/v1/audit/entries/2").json()
    assert entry["redacted"] is True
    assert entry["leaf_hash"]
    assert entry["verb"] is entry["event"] is entry["canonical"] is None
    listed = client.get("/api/v1/audit/entries/").json()["results"]
    assert [item["redacted"] for item in listed] == [False, False, True]
    assert client.get("/api/v1/audit/entries/?verb=consent.withdrawn").json()["results"] == []


@pytest.mark.parametrize("persona", ["alice", "operator"])
def test_the_citizen_and_operators_read_the_citizens_entry(request, mixed_log, persona) -> None:  # type: ignore[no-untyped-def]
    client = client_for(request.getfixturevalue(persona))
    entry = client.get("/api/v1/audit/entries/2").json()
    assert entry["redacted"] is False
    assert entry["verb"] == "consent.withdrawn"
    assert [e["leaf_index"] for e in client.get("/api/v1/audit/entries/?verb=consent.withdrawn").json()["results"]] == [
        2
    ]


def test_entries_filter_by_subject_and_time(api: APIClient, mixed_log) -> None:  # type: ignore[no-untyped-def]
    assert [e["leaf_index"] for e in api.get("/api/v1/audit/entries/?subject=thing:1").json()["results"]] == [1]
    assert api.get("/api/v1/audit/entries/?since=2999-01-01T00:00:00Z").json()["results"] == []
    response = api.get("/api/v1/audit/entries/?since=yesterday")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "since"


def test_an_unknown_leaf_index_is_a_problem_404(api: APIClient, mixed_log) -> None:  # type: ignore[no-untyped-def]
    response = api.get("/api/v1/audit/entries/99")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"


@pytest.mark.parametrize("hostile", ["' OR 1=1 --", "consent.withdrawn%' OR '1'='1", "\\x00", "a" * 64])
def test_hostile_filters_match_nothing_and_break_nothing(api: APIClient, mixed_log, hostile: str) -> None:  # type: ignore[no-untyped-def]
    response = api.get("/api/v1/audit/entries/", {"verb": hostile, "subject": hostile})
    assert response.status_code == 200
    assert response.json()["results"] == []


def test_a_nul_character_in_a_filter_is_refused_not_crashed(api: APIClient, mixed_log) -> None:  # type: ignore[no-untyped-def]
    response = api.get("/api/v1/audit/entries/", {"verb": "a\x00b"})
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
