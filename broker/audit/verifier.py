"""Verify the whole log from what is stored: leaves, roots, signatures, consistency.

It trusts nothing the sequencer wrote except the leaves' order: each leaf is
recomputed from its event (an erased entry keeps only its leaf hash, which
then stands as stored), each checkpoint root from the leaves, each signature
against the published keys, and each pair of successive checkpoints with a
consistency proof built from the stored tree nodes, as any client would.
"""

from __future__ import annotations

import hashlib
import itertools
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction

from broker import keys
from broker.audit import log
from broker.audit.sequencer import nodes
from broker.models import Checkpoint
from broker.transparency import merkle, verify

CHUNK = 20_000


class LogAltered(Exception):
    """The log does not verify; the message names the first bad index or checkpoint."""


@dataclass
class Report:
    entries: int = 0
    erased: int = 0
    checkpoints: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.entries / self.seconds if self.seconds else 0.0


def _leaf_chunks() -> Iterator[list[tuple[int, bytes, bytes | None]]]:
    """(leaf_index, leaf_hash, canonical or None) in log order, streamed from the database in chunks."""
    sql = (
        "SELECT e.leaf_index, e.leaf_hash, b.canonical FROM broker_auditentry e"
        " LEFT JOIN broker_auditbody b ON b.entry_id = e.id"
        " WHERE e.leaf_index IS NOT NULL ORDER BY e.leaf_index"
    )
    if connection.vendor == "postgresql":
        connection.ensure_connection()
        # Server-side (flat memory, needs the caller's transaction) and binary (bytea as bytes, no hex).
        with connection.connection.cursor(name="audit_verify", binary=True) as cursor:
            cursor.itersize = CHUNK
            cursor.execute(sql)
            while rows := cursor.fetchmany(CHUNK):
                yield rows
        return
    with connection.cursor() as cursor:
        cursor.execute(sql)
        while rows := cursor.fetchmany(CHUNK):
            yield [(index, bytes(leaf), None if body is None else bytes(body)) for index, leaf, body in rows]


def _root(stack: list[bytes]) -> bytes:
    """The root of a tree from its right edge: the complete subtrees, largest first."""
    if not stack:
        return merkle.EMPTY_ROOT
    root = stack[-1]
    for left in reversed(stack[:-1]):
        root = merkle.node_hash(left, root)
    return root


def _check_signatures(checkpoint: Checkpoint, jwks: Mapping[str, Any], note_keys: list[bytes]) -> None:
    """Both signatures verify against published keys and state this checkpoint's tree head."""
    head = (checkpoint.tree_size, bytes(checkpoint.root_hash))
    signed = verify.verify_checkpoint_jws(checkpoint.jws, jwks)
    if (signed.tree_size, signed.root_hash) != head:
        raise LogAltered(f"checkpoint {checkpoint.tree_size}: its JWS signs another tree head")
    for public_key in note_keys:
        try:
            text = verify.verify_note_ed25519(checkpoint.note, log.origin(), public_key)
        except verify.VerificationError:
            continue
        if verify.parse_checkpoint_note(text)[1:] != head:
            raise LogAltered(f"checkpoint {checkpoint.tree_size}: its signed note states another tree head")
        return
    raise LogAltered(f"checkpoint {checkpoint.tree_size}: its signed note does not verify")


def verify_log(progress: Callable[[int], None] | None = None) -> Report:
    """Check everything; raise LogAltered at the first problem, naming where it is."""
    started = time.perf_counter()
    report = Report()
    checkpoints = list(Checkpoint.objects.order_by("tree_size"))
    jwks = keys.jwks()
    note_keys = keys.note_public_keys()
    for checkpoint in checkpoints:
        try:
            _check_signatures(checkpoint, jwks, note_keys)
        except verify.VerificationError as exc:
            raise LogAltered(f"checkpoint {checkpoint.tree_size}: signature does not verify ({exc})") from exc
    due = iter(checkpoints)
    next_checkpoint = next(due, None)
    while next_checkpoint is not None and next_checkpoint.tree_size == 0:
        if bytes(next_checkpoint.root_hash) != merkle.EMPTY_ROOT:
            raise LogAltered("checkpoint 0: root is not the empty tree's")
        next_checkpoint = next(due, None)
    due_size = next_checkpoint.tree_size if next_checkpoint is not None else -1
    # The hot loop: a million leaves a few seconds, so names are local and hashing is inlined
    # (RFC 9162: leaf = SHA-256(0x00 || entry), node = SHA-256(0x01 || left || right)).
    sha256 = hashlib.sha256
    stack: list[bytes] = []  # the right edge of the tree rebuilt so far
    size = 0
    erased = 0
    with transaction.atomic():
        for chunk in _leaf_chunks():
            for leaf_index, stored_leaf, canonical in chunk:
                if leaf_index != size:
                    raise LogAltered(f"leaf index {size}: missing (next stored is {leaf_index})")
                if canonical is None:
                    erased += 1
                elif sha256(b"\x00" + canonical).digest() != stored_leaf:
                    raise LogAltered(f"leaf index {leaf_index}: its event does not hash to its leaf")
                node = stored_leaf
                size += 1
                closing = size
                while not closing & 1:  # each trailing zero bit of the new size closes a subtree
                    node = sha256(b"\x01" + stack.pop() + node).digest()
                    closing >>= 1
                stack.append(node)
                while size == due_size:
                    assert next_checkpoint is not None
                    if _root(stack) != bytes(next_checkpoint.root_hash):
                        raise LogAltered(
                            f"checkpoint {size}: root differs from the leaves (first bad index {leaf_index} or before)"
                        )
                    next_checkpoint = next(due, None)
                    due_size = next_checkpoint.tree_size if next_checkpoint is not None else -1
            if progress:
                progress(size)
    if next_checkpoint is not None:
        raise LogAltered(f"checkpoint {next_checkpoint.tree_size}: the log holds only {size} leaves")
    report.erased = erased
    _check_consistency(checkpoints)
    report.entries = size
    report.checkpoints = len(checkpoints)
    report.seconds = time.perf_counter() - started
    return report


def _check_consistency(checkpoints: list[Checkpoint]) -> None:
    """Each checkpoint extends the one before, by the proof a client would be served."""
    for older, newer in itertools.pairwise(checkpoints):
        if older.tree_size == 0:
            continue
        plan = merkle.consistency_plan(older.tree_size, newer.tree_size)
        try:
            proof = merkle.consistency_proof(older.tree_size, newer.tree_size, nodes(plan))
            verify.verify_consistency(
                older.tree_size, newer.tree_size, bytes(older.root_hash), bytes(newer.root_hash), proof
            )
        except (LookupError, verify.VerificationError) as exc:
            raise LogAltered(f"checkpoints {older.tree_size} → {newer.tree_size}: not consistent ({exc})") from exc
