"""Hostile uploads through POST /api/v1/datasets/{id}/uploads/: refused or loaded as docs/sharing.md says.

Never a 500; a refused file loads nothing; a refused line says its number and why. Ingestion
runs inline (`sharing.ingest.ingest`), as the outbox handler would in a worker.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from sharing import ingest
from sharing.models import Record, Upload
from tests.adversarial.world import World, build, rolled_back

HEADER = "traveller,day,origin,destination,km\n"


@pytest.fixture(scope="module")
def world(django_db_setup: None, django_db_blocker: Any) -> Iterator[World]:
    with rolled_back(django_db_blocker):
        built = build()
        built.token("marlieux", "grant:")  # minted outside every test's savepoint, or the first test's rollback ends it
        yield built


@pytest.fixture
def steward(world: World) -> APIClient:
    """Volta's data steward, who manages its datasets."""
    api = APIClient()
    api.force_login(world.users["stan"])
    return api


def _send(world: World, api: APIClient, body: bytes, content_type: str = "text/csv", **query: str) -> Any:
    dataset = world.objects["dataset"]["volta"]
    params = "&".join(f"{k}={v}" for k, v in query.items())
    return api.generic("POST", f"/api/v1/datasets/{dataset}/uploads/?{params}", body, content_type=content_type)


def _ingested(world: World, api: APIClient, body: bytes, content_type: str = "text/csv", **query: str) -> dict:
    """Upload, ingest inline, and read the upload back through the API."""
    records = Record.objects.count()
    response = _send(world, api, body, content_type, **query)
    assert response.status_code == 202, response.content
    upload = ingest.ingest(response.json()["id"])
    detail = api.get(f"/api/v1/datasets/{world.objects['dataset']['volta']}/uploads/{upload.pk}")
    assert detail.status_code == 200
    found = detail.json()
    found["records_added"] = Record.objects.count() - records
    return found


def test_formulas_load_as_data_and_are_defused_in_delivered_csv(world: World, db: None, steward: APIClient) -> None:
    formulas = ['=HYPERLINK("http://evil.example","x")', "+1+1", "-2+3", "@SUM(A1)", "\t=1", "=1,2"]
    rows = io.StringIO()
    writer = csv.writer(rows, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(HEADER.strip().split(","))
    for index, formula in enumerate(formulas):
        writer.writerow(["subject-alice", f"2026-03-{index + 1:02d}", formula, formula, 1])
    upload = _ingested(world, steward, rows.getvalue().encode())
    assert (upload["state"], upload["rows_loaded"], upload["records_added"]) == (
        "loaded",
        len(formulas),
        len(formulas),
    ), upload["errors"]

    delivered = list(csv.DictReader(io.StringIO(_delivered_csv(world), newline="")))
    origins = [row["origin"] for row in delivered if row["day"].startswith("2026-03")]
    assert len(origins) == len(formulas)
    for cell in origins:
        assert not cell.startswith(FORMULA_STARTS), cell
        assert cell.startswith("'"), cell


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _delivered_csv(world: World) -> str:
    """Marlieux reads its grant on Volta's trips as CSV, with a token bound to the grant."""
    reader = APIClient()
    reader.credentials(HTTP_AUTHORIZATION=f"Bearer {world.token('marlieux', 'grant:')}")
    response = reader.get(f"/api/v1/grants/{world.objects['grant']['volta']}/records", HTTP_ACCEPT="text/csv")
    assert response.status_code == 200
    return b"".join(response.streaming_content).decode()


def test_an_embedded_carriage_return_cannot_smuggle_a_formula_into_a_new_row(
    world: World, db: None, steward: APIClient
) -> None:
    rows = io.StringIO()
    csv.writer(rows, lineterminator="\r\n").writerows(
        [HEADER.strip().split(","), ["subject-alice", "2026-04-01", "Gare\r=1+1", "Gare\n@SUM(A1)", 1]]
    )
    assert _ingested(world, steward, rows.getvalue().encode())["state"] == "loaded"
    for line in _delivered_csv(world).splitlines():  # as a spreadsheet splits rows: at CR, LF or CRLF
        for cell in next(csv.reader([line]), []):
            assert not cell.startswith(FORMULA_STARTS[:4]), repr(line)


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("utf-16-bom", (HEADER + "t1,2026-01-05,Gare,Port,3.5\n").encode("utf-16")),
        ("latin-1", (HEADER + "t1,2026-01-05,Gare Saint-Étienne,Port,3.5\n").encode("latin-1")),
        ("unknown-columns", (HEADER.strip() + ",extra1,extra2\nt1,2026-01-05,Gare,Port,3.5,a,b\n").encode()),
        ("empty-header", b"\n\n\n"),
    ],
)
def test_an_unreadable_file_fails_as_a_whole_and_loads_nothing(
    world: World, db: None, steward: APIClient, name: str, body: bytes
) -> None:
    upload = _ingested(world, steward, body, on_error="keep_valid")
    assert upload["state"] in ("failed", "rejected"), upload
    assert upload["rows_loaded"] == 0
    assert upload["records_added"] == 0
    assert upload["failure"] or upload["errors"], upload


def test_a_row_with_too_many_values_is_refused_with_its_line(world: World, db: None, steward: APIClient) -> None:
    body = HEADER + "t1,2026-01-05,Gare,Port,3.5\n" + "t2,2026-01-05," + ",".join(["x"] * 50_000) + "\n"
    upload = _ingested(world, steward, body.encode(), on_error="keep_valid")
    assert (upload["state"], upload["rows_loaded"], upload["rows_rejected"]) == ("loaded", 1, 1)
    assert upload["errors"][0]["line"] == 3
    assert "values for 5 columns" in upload["errors"][0]["reason"]


def test_a_two_megabyte_csv_line_is_refused_alone(world: World, db: None, steward: APIClient) -> None:
    body = HEADER + "t1,2026-01-05,Gare,Port,3.5\n" + "t2,2026-01-05," + "x" * (2 << 20) + ",Port,1\n"
    upload = _ingested(world, steward, body.encode(), on_error="keep_valid")
    assert (upload["state"], upload["rows_loaded"], upload["rows_rejected"]) == ("loaded", 1, 1), upload


def test_a_two_megabyte_csv_line_loads_nothing_all_or_nothing(world: World, db: None, steward: APIClient) -> None:
    body = HEADER + "t1,2026-01-05,Gare,Port,3.5\n" + "t2,2026-01-05," + "x" * (2 << 20) + ",Port,1\n"
    upload = _ingested(world, steward, body.encode())
    assert upload["state"] in ("failed", "rejected")
    assert upload["records_added"] == 0


def test_a_two_megabyte_json_line_is_refused_with_its_line(world: World, db: None, steward: APIClient) -> None:
    good = {"traveller": "t1", "day": "2026-01-05", "origin": "Gare", "destination": "Port", "km": 1}
    huge = good | {"origin": "x" * (2 << 20)}
    body = (json.dumps(good) + "\n" + json.dumps(huge) + "\n").encode()
    upload = _ingested(world, steward, body, "application/x-ndjson", on_error="keep_valid")
    assert (upload["state"], upload["rows_loaded"], upload["rows_rejected"]) == ("loaded", 1, 1)
    assert upload["errors"][0]["line"] == 2
    assert "longer than" in upload["errors"][0]["reason"]


@pytest.mark.parametrize("depth", [50, 100_000])
def test_deeply_nested_json_is_refused_by_line(world: World, db: None, steward: APIClient, depth: int) -> None:
    good = {"traveller": "t1", "day": "2026-01-05", "origin": "Gare", "destination": "Port", "km": 1}
    nested = '{"traveller": "t2", "day": "2026-01-05", "origin": ' + "[" * depth + "]" * depth + "}"
    body = (json.dumps(good) + "\n" + nested + "\n").encode()
    upload = _ingested(world, steward, body, "application/x-ndjson", on_error="keep_valid")
    assert (upload["state"], upload["rows_loaded"], upload["rows_rejected"]) == ("loaded", 1, 1), upload
    assert upload["errors"][0]["line"] == 2


def test_a_nul_in_a_value_loads_as_data(world: World, db: None, steward: APIClient) -> None:
    body = (HEADER + "t1,2026-01-05,Ga\x00re,Port,3.5\n").encode()
    upload = _ingested(world, steward, body)
    assert (upload["state"], upload["rows_loaded"], upload["records_added"]) == ("loaded", 1, 1), upload


@pytest.mark.parametrize("file_format", ["csv", "jsonl"])
def test_a_nul_in_the_subject_key_is_refused_by_line(
    world: World, db: None, steward: APIClient, file_format: str
) -> None:
    good = {"traveller": "t1", "day": "2026-01-05", "origin": "Gare", "destination": "Port", "km": 1}
    if file_format == "csv":
        body, content_type = (
            (HEADER + "t1,2026-01-05,Gare,Port,1\nt\x00x,2026-01-05,Gare,Port,1\n").encode(),
            "text/csv",
        )
    else:
        lines = [json.dumps(good), json.dumps(good | {"traveller": "t\u0000x"})]
        body, content_type = ("\n".join(lines) + "\n").encode(), "application/x-ndjson"
    upload = _ingested(world, steward, body, content_type, on_error="keep_valid")
    assert (upload["state"], upload["rows_loaded"], upload["rows_rejected"]) == ("loaded", 1, 1), upload
    assert upload["errors"][0]["line"] == 3 if file_format == "csv" else 2


def test_an_upload_over_the_limit_is_refused_with_413_and_kept_nowhere(
    world: World, db: None, steward: APIClient, settings: Any
) -> None:
    settings.TIERS_UPLOAD_MAX_BYTES = 1000
    files_before = set(Path(settings.TIERS_UPLOAD_DIR).iterdir()) if Path(settings.TIERS_UPLOAD_DIR).exists() else set()
    uploads = Upload.objects.count()
    body = (HEADER + "t1,2026-01-05,Gare,Port,3.5\n" * 100).encode()
    response = _send(world, steward, body)
    assert response.status_code == 413, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    assert Upload.objects.count() == uploads
    assert set(Path(settings.TIERS_UPLOAD_DIR).iterdir()) == files_before


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", "multipart/form-data; boundary=x", ""])
def test_a_wrong_content_type_is_refused_and_creates_nothing(
    world: World, db: None, steward: APIClient, content_type: str
) -> None:
    uploads = Upload.objects.count()
    response = _send(world, steward, (HEADER + "t1,2026-01-05,Gare,Port,3.5\n").encode(), content_type)
    assert response.status_code in (415, 422), response.content
    assert response["Content-Type"].startswith("application/problem+json")
    assert Upload.objects.count() == uploads


def test_the_upload_directory_is_the_configured_one() -> None:
    assert Path(settings.TIERS_UPLOAD_DIR).is_absolute()
