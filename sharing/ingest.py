"""Hosted ingestion: an upload streamed to disk, then checked row by row and loaded in bulk.

Receiving never holds the file in memory: it is copied in chunks to the upload
directory while its SHA-256 is computed. A worker then reads it line by line,
checks each row against the dataset's Table Schema, encrypts the valid ones and
loads them with PostgreSQL COPY (batches elsewhere), all in one transaction
with the upload's final state, its errors and its audit entry. All-or-nothing
uploads with any invalid row load nothing; keep-valid uploads load the valid
rows and list the others. Nothing is ever half loaded: a crash rolls back.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from broker import audit, outbox
from broker.errors import InvalidInput, TiersError
from broker.policy import Principal
from sharing import policy, vault
from sharing.models import Dataset, Record, Upload, UploadError
from sharing.schemas import RowReader

CHUNK = 1 << 16
MAX_STORED_ERRORS = 1000
MAX_LINE_BYTES = 1 << 20  # one record is never a megabyte
BATCH = 5000
CONTENT_TYPES = {
    "text/csv": Upload.Format.CSV,
    "application/x-ndjson": Upload.Format.JSONL,
    "application/jsonl": Upload.Format.JSONL,
    "application/jsonlines": Upload.Format.JSONL,
}


class UploadTooLarge(TiersError):
    status = 413
    slug = "upload-too-large"
    title = "The upload is larger than Tiers accepts."


def upload_dir() -> Path:
    path = Path(settings.TIERS_UPLOAD_DIR)
    path.mkdir(parents=True, exist_ok=True)
    return path


def upload_receive(
    *, by: Principal, dataset: Dataset, body: IO[bytes], content_type: str, on_error: str, replace: bool
) -> Upload:
    """Copy the request body to disk in chunks, record the upload, and queue its ingestion."""
    policy.require_dataset_admin(by, dataset)
    if dataset.mode != Dataset.Mode.HOSTED:
        raise InvalidInput("A federated dataset's data stays at the holder: there is nothing to upload.")
    if dataset.state != Dataset.State.ACTIVE:
        raise InvalidInput("This dataset is withdrawn.")
    file_format = CONTENT_TYPES.get(content_type.split(";")[0].strip().lower())
    if file_format is None:
        raise InvalidInput(f"Send the file as one of: {', '.join(CONTENT_TYPES)}.")
    if on_error not in Upload.OnError.values:
        raise InvalidInput(f"on_error is one of: {', '.join(Upload.OnError.values)}.")
    limit = settings.TIERS_UPLOAD_MAX_BYTES
    digest = hashlib.sha256()
    size = 0
    handle, name = tempfile.mkstemp(prefix="upload-", suffix=f".{file_format}", dir=upload_dir())
    try:
        with os.fdopen(handle, "wb") as out:
            while chunk := body.read(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise UploadTooLarge(f"Uploads are limited to {limit} bytes; split the file.", limit=limit)
                digest.update(chunk)
                out.write(chunk)
        if size == 0:
            raise InvalidInput("The upload is empty.")
        with transaction.atomic():
            upload = Upload.objects.create(
                dataset=dataset,
                uploaded_by=audit.actor_ref(policy.actor_of(by)),
                format=file_format,
                on_error=on_error,
                replace=replace,
                path=name,
                size=size,
                sha256=digest.hexdigest(),
            )
            outbox.emit("sharing.upload_received", {"upload": str(upload.pk)})
            audit.record(
                verb="dataset.upload_received",
                actor=policy.actor_of(by),
                subject=dataset,
                details={"upload": str(upload.pk), "bytes": size, "sha256": upload.sha256, "replace": replace},
            )
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return upload


class _Unreadable(Exception):
    """The file as a whole cannot be read: nothing of it is loaded."""


def _lines(stream: IO[bytes]) -> Iterator[tuple[int, bytes | None]]:
    """(line number, bytes) per line; None for a line longer than MAX_LINE_BYTES."""
    number = 0
    while True:
        line = stream.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        number += 1
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            while (rest := stream.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                pass
            yield number, None
            continue
        yield number, line


def _raw_rows(upload: Upload, stream: IO[bytes], names: list[str]) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line, raw row) per data line, or (line, reason) when the line itself is unreadable."""
    if upload.format == Upload.Format.JSONL:
        for number, line in _lines(stream):
            if line is None:
                yield number, f"line longer than {MAX_LINE_BYTES} bytes"
                continue
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except (ValueError, UnicodeDecodeError) as exc:
                yield number, f"not JSON: {exc}"
                continue
            except RecursionError:
                yield number, "JSON nested too deeply"
                continue
            yield number, value if isinstance(value, dict) else "not a JSON object"
        return
    too_long: list[int] = []

    def physical_lines() -> Iterator[str]:
        """The file's lines as text; a line over MAX_LINE_BYTES is set aside (an empty line in its place)."""
        for number, line in _lines(stream):
            if line is None:
                too_long.append(number)
                yield "\n"
                continue
            try:
                yield line.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise _Unreadable(f"not UTF-8 at line {number}: {exc.reason}") from exc

    reader = csv.reader(physical_lines(), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise _Unreadable("the file is empty")
        check_header(header, names)
        for row in reader:
            while too_long:
                yield too_long.pop(0), f"line longer than {MAX_LINE_BYTES} bytes"
            if not row:
                continue
            if len(row) != len(header):
                yield reader.line_num, f"{len(row)} values for {len(header)} columns"
                continue
            yield reader.line_num, dict(zip(header, row, strict=True))
        while too_long:
            yield too_long.pop(0), f"line longer than {MAX_LINE_BYTES} bytes"
    except csv.Error as exc:
        raise _Unreadable(f"CSV error at line {reader.line_num}: {str(exc)[:200]}") from exc


MAX_NAMED = 20


def check_header(header: list[str], names: list[str]) -> None:
    """The CSV header names each schema field once; the reason names at most 20 culprits."""
    missing = [name for name in names if name not in header]
    extra = [name[:100] for name in header if name not in names]
    if missing or extra or len(set(header)) != len(header):

        def listed(found: list[str]) -> str:
            more = f" and {len(found) - MAX_NAMED} more" if len(found) > MAX_NAMED else ""
            return ", ".join(found[:MAX_NAMED]) + more

        raise _Unreadable(
            "the header must name the schema's fields once each"
            + (f"; missing: {listed(missing)}" if missing else "")
            + (f"; unknown: {listed(extra)}" if extra else "")
        )


class _Rejected(Exception):
    """All-or-nothing upload with invalid rows: roll back what was written."""


def ingest(upload_id: str) -> Upload:
    """Check and load one upload (an outbox handler; safe to run again)."""
    with transaction.atomic():
        # Locks the dataset's row too: two loads of one dataset (a replace, a key rotation's
        # re-encryption aside) never interleave.
        upload = Upload.objects.select_for_update(of=("self", "dataset")).select_related("dataset").get(pk=upload_id)
        if upload.state != Upload.State.RECEIVED:
            return upload
        dataset = upload.dataset
        errors: list[UploadError] = []
        counts = {"total": 0, "loaded": 0, "rejected": 0}
        try:
            with transaction.atomic():  # a savepoint: records go, errors stay
                if upload.replace:
                    Record.objects.filter(dataset=dataset).delete()
                _load(upload, dataset, errors, counts)
                if counts["rejected"] and upload.on_error == Upload.OnError.ALL_OR_NOTHING:
                    raise _Rejected
            upload.state = Upload.State.LOADED
        except _Rejected:
            upload.state = Upload.State.REJECTED
            counts["loaded"] = 0
        except (_Unreadable, OSError) as exc:
            upload.state = Upload.State.FAILED
            upload.failure = str(exc)
            counts["loaded"] = 0
        UploadError.objects.bulk_create(errors)
        upload.rows_total, upload.rows_loaded, upload.rows_rejected = (
            counts["total"],
            counts["loaded"],
            counts["rejected"],
        )
        upload.finished_at = timezone.now()
        path, upload.path = upload.path, ""
        upload.save()
        audit.record(
            verb=f"dataset.upload_{upload.state}",
            actor="system",
            subject=dataset,
            details={
                "upload": str(upload.pk),
                "rows": upload.rows_total,
                "loaded": upload.rows_loaded,
                "rejected": upload.rows_rejected,
                "replace": upload.replace and upload.state == Upload.State.LOADED,
            },
        )
        transaction.on_commit(lambda: Path(path).unlink(missing_ok=True) if path else None)
    return upload


def _load(upload: Upload, dataset: Dataset, errors: list[UploadError], counts: dict[str, int]) -> None:
    reader = RowReader(dataset.table_schema)
    key_field = dataset.subject_key_field
    payload_fields = dataset.payload_fields
    version = vault.current_version(dataset)
    aead = vault.cipher(dataset.pk, version)

    def refuse(line: int, field: str, reason: str) -> None:
        counts["rejected"] += 1
        if len(errors) < MAX_STORED_ERRORS:
            errors.append(UploadError(upload=upload, line=line, field=field[:100], reason=reason[:500]))

    def rows() -> Iterator[tuple[str, bytes]]:
        with open(upload.path, "rb") as stream:
            for line, raw in _raw_rows(upload, stream, reader.names):
                counts["total"] += 1
                if isinstance(raw, str):
                    refuse(line, "", raw)
                    continue
                values, problems = reader.read(raw)
                subject = values.get(key_field) if key_field else ""
                if key_field and not problems and (subject is None or not str(subject).strip()):
                    problems.append((key_field, f"{key_field}: the subject key is empty"))
                elif key_field and not problems and ("\x00" in str(subject) or len(str(subject)) > 128):
                    problems.append((key_field, f"{key_field}: a subject key has at most 128 characters, no NUL"))
                if problems:
                    refuse(line, problems[0][0], "; ".join(reason for _, reason in problems))
                    continue
                subject_ref = str(subject or "")
                plaintext = json.dumps(
                    {name: values.get(name) for name in payload_fields}, separators=(",", ":"), ensure_ascii=False
                ).encode()
                counts["loaded"] += 1
                yield subject_ref, vault.encrypt_payload(aead, plaintext, vault.record_aad(dataset.pk, subject_ref))

    if upload.format == Upload.Format.CSV:
        # Checked before COPY starts: a refusal raised inside COPY travels to PostgreSQL as its message.
        with open(upload.path, "rb") as stream:
            first = stream.readline(MAX_LINE_BYTES + 1)
        try:
            header = next(csv.reader([first.decode("utf-8-sig")]), None)
        except (UnicodeDecodeError, csv.Error) as exc:
            raise _Unreadable(f"the header line cannot be read: {str(exc)[:200]}") from exc
        if header is None:
            raise _Unreadable("the file is empty")
        check_header(header, reader.names)
    write_records(dataset.pk, upload.pk, version, rows())


def write_records(
    dataset_id: uuid.UUID, upload_id: uuid.UUID | None, version: int, rows: Iterator[tuple[str, bytes]]
) -> None:
    """Insert (subject_ref, sealed payload) rows: COPY on PostgreSQL, batches elsewhere."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            copy_sql = "COPY sharing_record (dataset_id, upload_id, subject_ref, key_version, payload) FROM STDIN"
            with cursor.cursor.copy(copy_sql) as copy:
                for subject_ref, payload in rows:
                    copy.write_row((dataset_id, upload_id, subject_ref, version, payload))
        return
    batch: list[Record] = []
    for subject_ref, payload in rows:
        batch.append(
            Record(
                dataset_id=dataset_id,
                upload_id=upload_id,
                subject_ref=subject_ref,
                key_version=version,
                payload=payload,
            )
        )
        if len(batch) >= BATCH:
            Record.objects.bulk_create(batch)
            batch.clear()
    Record.objects.bulk_create(batch)


def reencrypt(dataset_id: str, version: int, batch: int = BATCH) -> int:
    """Move a dataset's records to data key `version`, batch by batch; reads go on meanwhile."""
    moved = 0
    target = vault.cipher(dataset_id, version)
    while True:
        with transaction.atomic():
            rows = list(
                Record.objects.select_for_update(skip_locked=True)
                .filter(dataset_id=dataset_id, key_version__lt=version)
                .values_list("pk", "subject_ref", "key_version", "payload")[:batch]
            )
            if not rows:
                break
            updated = []
            for pk, subject_ref, old_version, payload in rows:
                aad = vault.record_aad(dataset_id, subject_ref)
                plaintext = vault.decrypt_payload(vault.cipher(dataset_id, old_version), bytes(payload), aad)
                updated.append(
                    Record(pk=pk, key_version=version, payload=vault.encrypt_payload(target, plaintext, aad))
                )
            Record.objects.bulk_update(updated, ["key_version", "payload"])
            moved += len(updated)
    if not Record.objects.filter(dataset_id=dataset_id, key_version__lt=version).exists():
        from sharing.models import DataKey

        DataKey.objects.filter(dataset_id=dataset_id, version__lt=version, retired_at__isnull=True).update(
            retired_at=timezone.now()
        )
    return moved
