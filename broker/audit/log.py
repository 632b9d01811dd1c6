"""The log's shape: its origin, and the signed checkpoint statement."""

from __future__ import annotations

import base64
import datetime
from typing import Any
from urllib.parse import urlsplit

import rfc8785
from django.conf import settings

HASH_ALGORITHM = "SHA-256, RFC 9162 leaf and node hashing"


def origin() -> str:
    """The log's name in signed notes: a schema-less URL, as C2SP tlog-checkpoint asks."""
    configured: str = getattr(settings, "AUDIT_LOG_ORIGIN", "")
    return configured or f"{urlsplit(settings.TIERS_BASE_URL).netloc}/audit"


def b64(data: bytes) -> str:
    """Standard base64, as every hash in the API."""
    return base64.b64encode(data).decode()


def timestamp(moment: datetime.datetime) -> str:
    """RFC 3339 UTC with seconds and milliseconds."""
    return moment.astimezone(datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def checkpoint_statement(tree_size: int, root_hash: bytes, moment: datetime.datetime) -> dict[str, Any]:
    """What a checkpoint's JWS signs: exactly these three members."""
    return {"tree_size": tree_size, "root_hash": b64(root_hash), "timestamp": timestamp(moment)}


def checkpoint_payload(statement: dict[str, Any]) -> bytes:
    """The JWS payload: the statement's RFC 8785 JSON."""
    return rfc8785.dumps(statement)


def checkpoint_note_text(tree_size: int, root_hash: bytes) -> str:
    """The body of a C2SP tlog-checkpoint: origin, size, root, each on its own line."""
    return f"{origin()}\n{tree_size}\n{b64(root_hash)}\n"
