"""A running Tiers' log checks out with independent code (PyJWT, pymerkle), over real HTTP."""

from __future__ import annotations

import pytest

from tests.broker.audit import independent_check


@pytest.mark.django_db(transaction=True)
def test_an_independent_verifier_accepts_the_served_log(live_server, log_of) -> None:  # type: ignore[no-untyped-def]
    log_of(37, batches=4)
    checked = independent_check.check(live_server.url)
    assert checked == {"checkpoints": 5, "inclusion_proofs": 9 + 18 + 27 + 36 + 37, "consistency_proofs": 15}


@pytest.mark.django_db(transaction=True)
def test_the_independent_verifier_notices_a_forged_root(live_server, log_of) -> None:  # type: ignore[no-untyped-def]
    from django.db import connection

    log_of(5, batches=1)
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE broker_checkpoint DISABLE TRIGGER USER")
        cursor.execute("UPDATE broker_checkpoint SET root_hash = %s WHERE tree_size = 5", [b"\x07" * 32])
        cursor.execute("ALTER TABLE broker_checkpoint ENABLE TRIGGER USER")
    with pytest.raises(AssertionError):
        independent_check.check(live_server.url)
