"""Reads of the transparency log: checkpoints, proofs and entries, scoped to the caller."""

from __future__ import annotations

import datetime
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.db.models import QuerySet

from broker import policy
from broker.audit import log
from broker.audit.sequencer import nodes, sequence_batch
from broker.errors import InvalidInput, NotFound
from broker.models import AuditEntry, Checkpoint, LogHead, User
from broker.transparency import merkle


def checkpoint_latest() -> Checkpoint:
    """The newest signed checkpoint; the first call on a new log signs the empty one."""
    checkpoint = Checkpoint.objects.order_by("-tree_size").first()
    if checkpoint is None:
        sequence_batch(batch_size=0)
        checkpoint = Checkpoint.objects.order_by("-tree_size").get()
    return checkpoint


def tree_size() -> int:
    """How many leaves the tree holds now (a checkpoint for it may be a moment behind)."""
    head = LogHead.objects.filter(pk=1).first()
    return head.tree_size if head else 0


def _check_size(size: int, name: str) -> None:
    current = tree_size()
    if size > current:
        raise InvalidInput(f"{name}={size} is larger than the log, which holds {current} leaves.")


def inclusion_proof(leaf_index: int, size: int) -> dict[str, Any]:
    """RFC 9162 §2.1.3: the audit path from one leaf to the root of the tree of `size` leaves."""
    _check_size(size, "tree_size")
    if not 0 <= leaf_index < size:
        raise InvalidInput(f"leaf_index must be at least 0 and less than tree_size ({size}).")
    plan = merkle.inclusion_plan(leaf_index, size)
    stored = nodes([*plan, (0, leaf_index)])
    return {
        "leaf_index": leaf_index,
        "tree_size": size,
        "leaf_hash": log.b64(stored[(0, leaf_index)]),
        "audit_path": [log.b64(node) for node in merkle.inclusion_proof(leaf_index, size, stored)],
    }


def consistency_proof(first: int, second: int) -> dict[str, Any]:
    """RFC 9162 §2.1.4: the proof that the tree of `second` leaves extends the tree of `first`."""
    _check_size(second, "second")
    if not 0 < first <= second:
        raise InvalidInput("first must be at least 1 and at most second.")
    stored = nodes(merkle.consistency_plan(first, second))
    return {
        "first": first,
        "second": second,
        "consistency_path": [log.b64(node) for node in merkle.consistency_proof(first, second, stored)],
    }


def entries(
    user: User | AnonymousUser,
    *,
    verb: str | None = None,
    subject: str | None = None,
    since: datetime.datetime | None = None,
    until: datetime.datetime | None = None,
) -> QuerySet[AuditEntry]:
    """Sequenced entries in log order; filtering by what an event says only sees readable events."""
    found = AuditEntry.objects.filter(leaf_index__isnull=False).select_related("body").order_by("leaf_index")
    if verb or subject:
        found = found.filter(policy.audit_events_readable_by(user))
    if verb:
        found = found.filter(body__verb=verb)
    if subject:
        found = found.filter(body__subject=subject)
    if since:
        found = found.filter(created_at__gte=since)
    if until:
        found = found.filter(created_at__lt=until)
    return found


def entry(leaf_index: int) -> AuditEntry:
    """One sequenced entry by its leaf index."""
    found = AuditEntry.objects.select_related("body").filter(leaf_index=leaf_index).first()
    if found is None:
        raise NotFound(f"No entry has leaf index {leaf_index}.")
    return found


def can_read_event(user: User | AnonymousUser, entry: AuditEntry) -> bool:
    """Whether the user may read the event behind this leaf."""
    body = getattr(entry, "body", None)
    return body is not None and policy.can_read_audit_event(user, body.citizen_id)
