"""Writers never wait on each other or on the sequencer; two sequencers never collide."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction

from broker import audit
from broker.audit import sequencer
from broker.models import AuditEntry, Checkpoint
from broker.transparency import merkle


def in_thread(function) -> threading.Thread:  # type: ignore[no-untyped-def]
    """Run with a connection of its own, as another web process would."""

    def run() -> None:
        try:
            function()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True)
def test_a_writer_does_not_wait_for_another_writers_open_transaction() -> None:
    first_has_written = threading.Event()
    second_done = threading.Event()

    def slow_writer() -> None:
        with transaction.atomic():
            audit.record(verb="test.slow", actor=None, subject="x:1")
            first_has_written.set()
            # Holds its transaction open until the other writer has committed.
            assert second_done.wait(timeout=10), "the second writer was blocked"

    def fast_writer() -> None:
        first_has_written.wait(timeout=10)
        with transaction.atomic():
            audit.record(verb="test.fast", actor=None, subject="x:2")
        second_done.set()

    threads = [in_thread(slow_writer), in_thread(fast_writer)]
    for thread in threads:
        thread.join(timeout=20)
    assert second_done.is_set()
    assert AuditEntry.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_two_sequencers_at_once_give_each_entry_one_index() -> None:
    for number in range(200):
        with transaction.atomic():
            audit.record(verb="test.many", actor=None, subject=f"x:{number}")
    threads = [in_thread(lambda: sequencer.sequence(batch_size=30)) for _ in range(2)]
    for thread in threads:
        thread.join(timeout=60)
    indexes = sorted(AuditEntry.objects.values_list("leaf_index", flat=True))
    assert indexes == list(range(200))
    sizes = list(Checkpoint.objects.order_by("tree_size").values_list("tree_size", flat=True))
    assert sizes == sorted(set(sizes))
    assert sizes[-1] == 200


@pytest.mark.django_db(transaction=True)
def test_an_entry_committed_while_the_sequencer_runs_is_sequenced_next_time() -> None:
    sequenced_meanwhile: list[int] = []
    with transaction.atomic():
        audit.record(verb="test.late", actor=None, subject="x:1")
        # The sequencer runs while this writer's transaction is still open.
        in_thread(lambda: sequenced_meanwhile.append(sequencer.sequence())).join(timeout=20)
    assert sequenced_meanwhile == [0]  # it could not see the uncommitted entry
    assert sequencer.sequence() == 1
    leaf = bytes(AuditEntry.objects.get().leaf_hash)
    assert bytes(Checkpoint.objects.get(tree_size=1).root_hash) == merkle.root_from(1, {(0, 0): leaf})
