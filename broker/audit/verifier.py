"""Verify the whole log from what is stored: leaves, roots, signatures, consistency.

It trusts nothing the sequencer wrote except the leaves' order: each leaf is
recomputed from its event (an erased entry keeps only its leaf hash, which
then stands as stored), each checkpoint root from the leaves, each signature
against the published keys, and each pair of successive checkpoints with a
consistency proof built from the stored tree nodes, as any client would.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import connection

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


def _leaves() -> Iterator[tuple[int, bytes, bytes | None]]:
    """(leaf_index, leaf_hash, canonical or None) in log order, streamed from the database."""
    sql = (
        "SELECT e.leaf_index, e.leaf_hash, b.canonical FROM broker_auditentry e"
        " LEFT JOIN broker_auditbody b ON b.entry_id = e.id"
        " WHERE e.leaf_index IS NOT NULL ORDER BY e.leaf_index"
    )
    if connection.vendor == "postgresql":
        connection.ensure_connection()
        with connection.connection.cursor(name="audit_verify") as cursor:  # server-side: flat memory
            cursor.itersize = CHUNK
            cursor.execute(sql)
            while rows := cursor.fetchmany(CHUNK):
                yield from rows
        return
    with connection.cursor() as cursor:
        cursor.execute(sql)
        while rows := cursor.fetchmany(CHUNK):
            yield from rows


class _CompactRange:
    """The right edge of a tree being rebuilt leaf by leaf: O(log n) hashes in memory."""

    def __init__(self) -> None:
        self.size = 0
        self.stack: list[bytes] = []

    def append(self, leaf: bytes) -> None:
        self.stack.append(leaf)
        self.size += 1
        size = self.size
        while size % 2 == 0:  # each trailing zero bit of the size closes a subtree
            right = self.stack.pop()
            self.stack[-1] = merkle.node_hash(self.stack[-1], right)
            size //= 2

    def root(self) -> bytes:
        if not self.stack:
            return merkle.EMPTY_ROOT
        root = self.stack[-1]
        for left in reversed(self.stack[:-1]):
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
    tree = _CompactRange()
    while next_checkpoint is not None and next_checkpoint.tree_size == 0:
        if bytes(next_checkpoint.root_hash) != merkle.EMPTY_ROOT:
            raise LogAltered("checkpoint 0: root is not the empty tree's")
        next_checkpoint = next(due, None)
    for leaf_index, stored_leaf, canonical in _leaves():
        if leaf_index != tree.size:
            raise LogAltered(f"leaf index {tree.size}: missing (next stored is {leaf_index})")
        stored_leaf = bytes(stored_leaf)
        if canonical is None:
            report.erased += 1
        elif merkle.leaf_hash(bytes(canonical)) != stored_leaf:
            raise LogAltered(f"leaf index {leaf_index}: its event does not hash to its leaf")
        tree.append(stored_leaf)
        while next_checkpoint is not None and next_checkpoint.tree_size == tree.size:
            if tree.root() != bytes(next_checkpoint.root_hash):
                raise LogAltered(
                    f"checkpoint {tree.size}: root differs from the leaves (first bad index {leaf_index} or before)"
                )
            next_checkpoint = next(due, None)
        if progress and tree.size % 100_000 == 0:
            progress(tree.size)
    if next_checkpoint is not None:
        raise LogAltered(f"checkpoint {next_checkpoint.tree_size}: the log holds only {tree.size} leaves")
    _check_consistency(checkpoints)
    report.entries = tree.size
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
