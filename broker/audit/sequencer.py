"""The sequencer: gives pending entries their leaf indexes, extends the tree, signs a checkpoint.

One sequencer runs at a time (it locks the LogHead row); writers never wait for
it. It is safe to run twice at once and after a crash: a batch commits whole or
not at all.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from broker import keys
from broker.audit import log
from broker.models import AuditEntry, Checkpoint, LogHead, MerkleNode
from broker.transparency import merkle

BATCH_SIZE = 10_000


def nodes(ids: Iterable[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    """Read the named tree nodes in one query."""
    wanted = set(ids)
    if not wanted:
        return {}
    condition = Q()
    for level, index in wanted:
        condition |= Q(level=level, index=index)
    found = {
        (level, index): bytes(hash_)
        for level, index, hash_ in MerkleNode.objects.filter(condition).values_list("level", "index", "hash")
    }
    missing = wanted - found.keys()
    if missing:
        raise LookupError(f"tree nodes missing from the store: {sorted(missing)[:5]}")
    return found


def _assign_indexes(entry_ids: list[int], first_index: int) -> None:
    """Give each entry its leaf index, in one statement."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE broker_auditentry AS e SET leaf_index = v.leaf_index"
                " FROM unnest(%s::bigint[], %s::bigint[]) AS v(id, leaf_index) WHERE e.id = v.id",
                [entry_ids, list(range(first_index, first_index + len(entry_ids)))],
            )
        return
    AuditEntry.objects.bulk_update(
        [AuditEntry(pk=pk, leaf_index=first_index + offset) for offset, pk in enumerate(entry_ids)],
        ["leaf_index"],
        batch_size=500,
    )


def _sign_checkpoint(tree_size: int, root_hash: bytes) -> Checkpoint:
    """Sign the tree head twice: as a JWS (for JOSE tools) and as a C2SP note (for witnesses)."""
    moment = timezone.now()
    statement = log.checkpoint_statement(tree_size, root_hash, moment)
    return Checkpoint.objects.create(
        tree_size=tree_size,
        root_hash=root_hash,
        timestamp=moment,
        jws=keys.sign_jws(log.checkpoint_payload(statement), typ="tiers-checkpoint+jws"),
        note=keys.sign_note(log.checkpoint_note_text(tree_size, root_hash), name=log.origin()),
    )


def sequence_batch(batch_size: int = BATCH_SIZE) -> int:
    """Sequence up to `batch_size` pending entries and sign the new tree head; returns how many."""
    with transaction.atomic():
        head, _ = LogHead.objects.select_for_update().get_or_create(pk=1)
        pending = list(
            AuditEntry.objects.filter(leaf_index__isnull=True)
            .order_by("id")
            .values_list("id", "leaf_hash")[:batch_size]
        )
        if not pending:
            if not Checkpoint.objects.exists():
                _sign_checkpoint(0, merkle.EMPTY_ROOT)  # the log answers from the first start
            return 0
        size = head.tree_size
        known = nodes(merkle.append_plan(size, len(pending)))
        added = merkle.append_nodes(size, known, [bytes(leaf) for _, leaf in pending])
        MerkleNode.objects.bulk_create(
            [MerkleNode(level=level, index=index, hash=hash_) for level, index, hash_ in added],
            batch_size=5000,
        )
        _assign_indexes([entry_id for entry_id, _ in pending], size)
        head.tree_size = size + len(pending)
        head.save(update_fields=["tree_size"])
        tree = {**known, **{(level, index): hash_ for level, index, hash_ in added}}
        plan = merkle.root_plan(head.tree_size)
        tree.update(nodes(node for node in plan if node not in tree))
        _sign_checkpoint(head.tree_size, merkle.root_from(head.tree_size, tree))
        return len(pending)


def sequence(*, batch_size: int = BATCH_SIZE, max_batches: int = 100) -> int:
    """Sequence everything pending, batch by batch; returns how many entries it sequenced."""
    total = 0
    for _ in range(max_batches):
        count = sequence_batch(batch_size)
        total += count
        if count < batch_size:
            break
    return total
