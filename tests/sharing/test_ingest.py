"""Hosted ingestion: every row checked, line-level reasons, all-or-nothing or keep-valid, never half loaded."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from broker.errors import InvalidInput, NotFound
from broker.models import AuditBody, User
from sharing import ingest
from sharing.models import Dataset, Record, Upload
from tests.sharing.conftest import trips_csv, upload

pytestmark = pytest.mark.django_db

GOOD = [("T-1", "2026-03-01", "Gare", "Campus", 4.5), ("T-2", "2026-03-02", "Port", "Gare", 2)]


def test_a_valid_csv_loads_every_row_and_removes_the_file(
    holder_admin: User, trips: Dataset, django_capture_on_commit_callbacks: Any
) -> None:
    received = ingest.upload_receive(
        by=holder_admin,
        dataset=trips,
        body=io.BytesIO(trips_csv(GOOD)),
        content_type="text/csv; charset=utf-8",
        on_error="all_or_nothing",
        replace=False,
    )
    path = Path(received.path)
    assert path.exists()
    with django_capture_on_commit_callbacks(execute=True):
        done = ingest.ingest(str(received.pk))
    assert (done.state, done.rows_total, done.rows_loaded, done.rows_rejected) == ("loaded", 2, 2, 0)
    assert not path.exists()
    assert Record.objects.filter(dataset=trips).count() == 2
    assert ingest.ingest(str(received.pk)).rows_loaded == 2  # a second run (a re-sent event) loads nothing more
    assert Record.objects.filter(dataset=trips).count() == 2


def test_all_or_nothing_rejects_the_file_with_each_lines_reason(holder_admin: User, trips: Dataset) -> None:
    rows = [
        *GOOD,
        ("T-3", "yesterday", "A", "B", 1),
        ("", "2026-03-01", "A", "B", 1),
        ("T-5", "2026-03-01", "A", "B", -2),
    ]
    done = upload(holder_admin, trips, trips_csv(rows))
    assert (done.state, done.rows_loaded, done.rows_rejected) == ("rejected", 0, 3)
    reasons = {(e.line, e.field): e.reason for e in done.errors.all()}
    assert set(reasons) == {(4, "day"), (5, "traveller"), (6, "km")}
    assert "minimum" in reasons[(6, "km")]
    assert not Record.objects.exists()
    event = json.loads(AuditBody.objects.filter(verb="dataset.upload_rejected").get().canonical)
    assert event["details"]["rejected"] == 3


def test_keep_valid_loads_the_good_rows_and_lists_the_others(holder_admin: User, trips: Dataset) -> None:
    rows = [*GOOD, ("T-3", "2026-02-30", "A", "B", 1)]
    done = upload(holder_admin, trips, trips_csv(rows), on_error="keep_valid")
    assert (done.state, done.rows_loaded, done.rows_rejected) == ("loaded", 2, 1)
    assert [(e.line, e.field) for e in done.errors.all()] == [(4, "day")]
    assert sorted(Record.objects.values_list("subject_ref", flat=True)) == ["T-1", "T-2"]


def test_replace_swaps_the_records_in_one_go(holder_admin: User, trips: Dataset) -> None:
    upload(holder_admin, trips, trips_csv(GOOD))
    upload(holder_admin, trips, trips_csv([("T-9", "2026-03-05", "Nord", "Sud", 3)]), replace=True)
    assert list(Record.objects.values_list("subject_ref", flat=True)) == ["T-9"]
    bad = upload(holder_admin, trips, trips_csv([("T-8", "nope", "A", "B", 1)]), replace=True)
    assert bad.state == "rejected"
    assert list(Record.objects.values_list("subject_ref", flat=True)) == ["T-9"]  # a rejected replace keeps the old


def test_json_lines_are_checked_line_by_line(holder_admin: User, trips: Dataset) -> None:
    lines = [
        json.dumps({"traveller": "T-1", "day": "2026-03-01", "origin": "A", "destination": "B", "km": 1.5}),
        "{not json",
        json.dumps(["a", "list"]),
        json.dumps({"traveller": "T-2", "day": "2026-03-01", "salary": 3}),
        "",
        json.dumps({"traveller": "T-3", "day": "2026-03-02"}),
    ]
    body = ("\n".join(lines) + "\n").encode()
    done = upload(holder_admin, trips, body, content_type="application/x-ndjson", on_error="keep_valid")
    assert (done.rows_loaded, done.rows_rejected) == (2, 3)
    reasons = {e.line: e.reason for e in done.errors.all()}
    assert set(reasons) == {2, 3, 4}
    assert reasons[2].startswith("not JSON")
    assert "not a JSON object" in reasons[3]
    assert "salary" in reasons[4]


def test_a_huge_line_is_refused_without_reading_it_into_one_row(holder_admin: User, trips: Dataset) -> None:
    huge = json.dumps({"traveller": "T-1", "day": "2026-03-01", "origin": "x" * (ingest.MAX_LINE_BYTES + 10)})
    ok = json.dumps({"traveller": "T-2", "day": "2026-03-01"})
    body = f"{huge}\n{ok}\n".encode()
    done = upload(holder_admin, trips, body, content_type="application/x-ndjson", on_error="keep_valid")
    assert (done.rows_loaded, done.rows_rejected) == (1, 1)
    assert "longer than" in done.errors.get().reason
    assert done.errors.get().line == 1


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"traveller,day\nT-1,2026-03-01\n", "missing: origin"),
        (b"traveller,day,origin,destination,km,salary\n", "unknown: salary"),
        ("traveller,day,origin,destination,km\nT-1,2026-03-01,Gare\xe9,B,1\n".encode("latin-1"), "not UTF-8"),
    ],
)
def test_a_file_that_cannot_be_read_fails_whole_with_its_reason(
    holder_admin: User, trips: Dataset, body: bytes, reason: str
) -> None:
    done = upload(holder_admin, trips, body, on_error="keep_valid")
    assert done.state == "failed"
    assert reason in done.failure
    assert not Record.objects.exists()


def test_csv_rows_with_too_many_values_are_refused(holder_admin: User, trips: Dataset) -> None:
    body = trips_csv(GOOD) + b"T-3,2026-03-01,A,B,1,extra\n"
    done = upload(holder_admin, trips, body, on_error="keep_valid")
    assert (done.rows_loaded, done.rows_rejected) == (2, 1)
    assert "6 values for 5 columns" in done.errors.get().reason


def test_uploads_are_refused_before_anything_is_recorded(
    holder_admin: User, trips: Dataset, user_admin: User, settings: object
) -> None:
    def send(by: User, body: bytes, content_type: str = "text/csv") -> Upload:
        return ingest.upload_receive(
            by=by, dataset=trips, body=io.BytesIO(body), content_type=content_type, on_error="keep_valid", replace=False
        )

    files_before = set(Path(ingest.upload_dir()).iterdir())
    with pytest.raises(NotFound):  # another organisation's member
        send(user_admin, trips_csv(GOOD))
    with pytest.raises(InvalidInput, match="Send the file as"):
        send(holder_admin, b"<xml/>", "application/xml")
    with pytest.raises(InvalidInput, match="empty"):
        send(holder_admin, b"")
    settings.TIERS_UPLOAD_MAX_BYTES = 10  # type: ignore[attr-defined]
    with pytest.raises(ingest.UploadTooLarge):
        send(holder_admin, trips_csv(GOOD))
    assert not Upload.objects.exists()
    assert set(Path(ingest.upload_dir()).iterdir()) == files_before  # no file left behind


def test_an_integer_subject_key_loads(holder_admin: User, holder: Any) -> None:
    from sharing import services

    meters = services.dataset_register(
        by=holder_admin, holder=holder, slug="meters", title="Meters", mode="hosted",
        table_schema={"fields": [{"name": "meter", "type": "integer"}, {"name": "kwh", "type": "number"}]},
        subject_key_field="meter", personal_fields=["meter"], data_categories=["dpv-pd:EnergyConsumption"],
    )  # fmt: skip
    done = upload(holder_admin, meters, b"meter,kwh\n1042,3.5\n1043,4\n")
    assert (done.state, done.rows_loaded) == ("loaded", 2)
    assert sorted(Record.objects.filter(dataset=meters).values_list("subject_ref", flat=True)) == ["1042", "1043"]


@pytest.mark.parametrize("name", ["subject_pseudonym", "=cmd", "@sum", "-2+3"])
def test_field_names_a_spreadsheet_or_the_delivery_would_misread_are_refused(
    holder_admin: User, holder: Any, name: str
) -> None:
    from sharing import services

    with pytest.raises(InvalidInput, match="Field names"):
        services.dataset_register(
            by=holder_admin, holder=holder, slug="x", title="X", mode="hosted",
            table_schema={"fields": [{"name": name, "type": "string"}]},
        )  # fmt: skip


def test_an_upload_with_no_body_is_refused_not_a_server_error(holder_admin: User, trips: Dataset) -> None:
    from tests.conftest import client_for

    answer = client_for(holder_admin).post(f"/api/v1/datasets/{trips.pk}/uploads/", content_type="text/csv")
    assert answer.status_code == 422
    assert "empty" in answer.json()["detail"]
