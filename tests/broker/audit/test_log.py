"""The sequencer, the proofs the API serves, and audit_verify, checked by the standalone verifier."""

from __future__ import annotations

import base64
import itertools
import json

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from rest_framework.test import APIClient

from broker import audit, keys
from broker.audit import log, sequencer
from broker.models import AuditBody, AuditEntry, Checkpoint
from broker.transparency import verify
from tests.broker.audit.conftest import write_entries

b64 = base64.b64decode


def jwks(api: APIClient) -> dict:  # type: ignore[type-arg]
    response = api.get("/oauth/jwks")
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


def checkpoint_of(api: APIClient) -> verify.Checkpoint:
    """The latest checkpoint, as a client checks it: signature first, against the JWKS alone."""
    body = api.get("/api/v1/audit/checkpoints/latest").json()
    checkpoint = verify.verify_checkpoint_jws(body["jws"], jwks(api))
    assert checkpoint.tree_size == body["tree_size"]
    assert checkpoint.root_hash == b64(body["root_hash"])
    return checkpoint


def without_triggers(table: str) -> None:
    """What an attacker with database access does first (undone when the test's transaction ends)."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # ALTER TABLE waits for no deferred check
        cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")


@pytest.mark.django_db
def test_a_new_log_answers_with_a_signed_empty_checkpoint(api: APIClient) -> None:
    checkpoint = checkpoint_of(api)
    assert checkpoint.tree_size == 0
    assert checkpoint.root_hash == bytes.fromhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")


@pytest.mark.django_db
def test_sequencing_gives_contiguous_indexes_in_commit_batches(log_of) -> None:  # type: ignore[no-untyped-def]
    log_of(25, batches=4)
    assert sorted(AuditEntry.objects.values_list("leaf_index", flat=True)) == list(range(25))
    sizes = list(Checkpoint.objects.order_by("tree_size").values_list("tree_size", flat=True))
    assert sizes == [6, 12, 18, 24, 25]
    assert sequencer.sequence() == 0  # nothing pending: no new checkpoint
    assert Checkpoint.objects.count() == 5


@pytest.mark.django_db
def test_every_inclusion_and_consistency_proof_the_api_serves_verifies(api: APIClient, log_of) -> None:  # type: ignore[no-untyped-def]
    log_of(300, batches=7)
    checkpoints = {c.tree_size: bytes(c.root_hash) for c in Checkpoint.objects.all()}
    head = checkpoint_of(api)
    assert head.tree_size == 300
    for size, root in checkpoints.items():
        for index in range(size) if size == 300 else range(0, size, 7):
            proof = api.get(f"/api/v1/audit/proofs/inclusion?leaf_index={index}&tree_size={size}").json()
            leaf = b64(proof["leaf_hash"])
            assert leaf == bytes(AuditEntry.objects.get(leaf_index=index).leaf_hash)
            verify.verify_inclusion(leaf, index, size, [b64(p) for p in proof["audit_path"]], root)
    for first, second in itertools.combinations_with_replacement(sorted(checkpoints), 2):
        proof = api.get(f"/api/v1/audit/proofs/consistency?first={first}&second={second}").json()
        path = [b64(p) for p in proof["consistency_path"]]
        verify.verify_consistency(first, second, checkpoints[first], checkpoints[second], path)


@pytest.mark.django_db
def test_consistency_proofs_verify_between_every_pair_of_sizes(api: APIClient, log_of) -> None:  # type: ignore[no-untyped-def]
    log_of(48, batches=1)
    roots = {}
    for size in range(1, 49):
        path = api.get(f"/api/v1/audit/proofs/inclusion?leaf_index=0&tree_size={size}").json()["audit_path"]
        leaf = bytes(AuditEntry.objects.get(leaf_index=0).leaf_hash)
        roots[size] = _root_from_path(leaf, size, [b64(p) for p in path])
    assert roots[48] == checkpoint_of(api).root_hash
    for first, second in itertools.combinations_with_replacement(range(1, 49), 2):
        proof = api.get(f"/api/v1/audit/proofs/consistency?first={first}&second={second}").json()
        verify.verify_consistency(
            first, second, roots[first], roots[second], [b64(p) for p in proof["consistency_path"]]
        )


def _root_from_path(leaf: bytes, size: int, path: list[bytes]) -> bytes:
    """Leaf 0's inclusion path folds into the root of the tree of `size` (RFC 9162 §2.1.3.2)."""
    from broker.transparency.merkle import node_hash

    index, last, root = 0, size - 1, leaf
    for sibling in path:
        if last == 0:
            break
        root = node_hash(root, sibling) if index % 2 == 0 and index != last else node_hash(sibling, root)
        while index % 2 == 0 and index == last and last:
            index, last = index // 2, last // 2
        index, last = index // 2, last // 2
    return root


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("leaf_index=5&tree_size=5", 422),
        ("leaf_index=0&tree_size=99", 422),
        ("leaf_index=-1&tree_size=3", 400),
        ("leaf_index=x&tree_size=3", 400),
        ("tree_size=3", 400),
    ],
)
def test_a_bad_inclusion_query_is_a_problem(api: APIClient, log_of, query: str, status: int) -> None:  # type: ignore[no-untyped-def]
    log_of(5, batches=1)
    response = api.get(f"/api/v1/audit/proofs/inclusion?{query}")
    assert response.status_code == status
    assert response["Content-Type"] == "application/problem+json"


@pytest.mark.django_db
def test_the_checkpoint_is_also_a_c2sp_signed_note(api: APIClient, log_of) -> None:  # type: ignore[no-untyped-def]
    log_of(3, batches=1)
    response = api.get("/api/v1/audit/checkpoints/latest", HTTP_ACCEPT="text/plain")
    assert response["Content-Type"].startswith("text/plain")
    note = response.content.decode()
    info = api.get("/api/v1/audit/").json()
    name, public_key = verify.parse_note_verifier_key(info["note_verifier_keys"][0])
    assert name == log.origin() == "testserver/audit"
    text = verify.verify_note_ed25519(note, name, public_key)
    assert verify.parse_checkpoint_note(text) == (
        name,
        3,
        bytes(Checkpoint.objects.get(tree_size=3).root_hash),
    )


@pytest.mark.django_db
def test_a_checkpoint_signed_by_another_key_is_rejected(api: APIClient, log_of) -> None:  # type: ignore[no-untyped-def]
    from joserfc import jws
    from joserfc.jwk import ECKey

    log_of(3, batches=1)
    body = api.get("/api/v1/audit/checkpoints/latest").json()
    payload = log.checkpoint_payload({k: body[k] for k in ("tree_size", "root_hash", "timestamp")})
    kid = json.loads(base64.urlsafe_b64decode(body["jws"].split(".")[0] + "=="))["kid"]
    forged = jws.serialize_compact(
        {"alg": "ES256", "kid": kid}, payload, ECKey.generate_key("P-256"), algorithms=["ES256"]
    )
    with pytest.raises(verify.VerificationError):
        verify.verify_checkpoint_jws(forged, jwks(api))


@pytest.mark.django_db
def test_audit_verify_is_clean_on_an_honest_log(log_of, capsys) -> None:  # type: ignore[no-untyped-def]
    log_of(40, batches=4)
    call_command("audit_verify")
    out = capsys.readouterr().out
    assert "audit log verifies: 40 entries (0 erased), 4 checkpoints" in out
    assert "entries/s" in out


@pytest.mark.django_db
def test_audit_verify_names_exactly_the_entry_altered_in_the_database(log_of) -> None:  # type: ignore[no-untyped-def]
    log_of(30, batches=3)
    victim = AuditEntry.objects.get(leaf_index=17)
    forged = bytes(AuditBody.objects.get(entry=victim).canonical).replace(b'"n":', b'"n":1')
    without_triggers("broker_auditbody")
    AuditBody.objects.filter(entry=victim).update(canonical=forged)
    with pytest.raises(CommandError, match="leaf index 17: its event does not hash to its leaf"):
        call_command("audit_verify")


@pytest.mark.django_db
def test_audit_verify_catches_a_leaf_hash_rewritten_to_match_a_forged_event(log_of) -> None:  # type: ignore[no-untyped-def]
    log_of(30, batches=3)
    victim = AuditEntry.objects.get(leaf_index=4)
    forged = bytes(AuditBody.objects.get(entry=victim).canonical).replace(b'"n":', b'"n":1')
    without_triggers("broker_auditbody")
    without_triggers("broker_auditentry")
    AuditBody.objects.filter(entry=victim).update(canonical=forged)
    AuditEntry.objects.filter(pk=victim.pk).update(leaf_hash=audit.leaf_hash(forged))
    with pytest.raises(CommandError, match=r"checkpoint 10: root differs from the leaves \(first bad index 9"):
        call_command("audit_verify")


@pytest.mark.django_db
def test_audit_verify_rejects_a_checkpoint_signed_by_another_key(log_of) -> None:  # type: ignore[no-untyped-def]
    log_of(10, batches=2)
    keys.key_rotate(actor=None, purpose="jws")
    honest = Checkpoint.objects.get(tree_size=10)
    forged_key = keys.active_key("jws")
    without_triggers("broker_checkpoint")
    forged_key.delete()  # a key nobody published
    keys.forget_cached_keys()
    Checkpoint.objects.filter(pk=honest.pk).update(jws=keys.sign_jws(b"{}", typ="tiers-checkpoint+jws"))
    with pytest.raises(CommandError, match="checkpoint 10"):
        call_command("audit_verify")


@pytest.mark.django_db
def test_erasing_a_citizen_keeps_the_log_verifying(api: APIClient, log_of, alice, bob) -> None:  # type: ignore[no-untyped-def]
    write_entries(3, citizen_id=alice.pk, verb="consent.given")
    write_entries(2, citizen_id=bob.pk, verb="consent.given")
    log_of(4, batches=1)
    before = checkpoint_of(api)
    with transaction.atomic():
        assert audit.erase_citizen(actor=None, citizen_id=alice.pk) == 3
    sequencer.sequence()
    assert not AuditBody.objects.filter(citizen_id=alice.pk).exists()
    call_command("audit_verify")
    after = checkpoint_of(api)
    proof = api.get(f"/api/v1/audit/proofs/consistency?first={before.tree_size}&second={after.tree_size}").json()
    verify.verify_consistency(
        before.tree_size,
        after.tree_size,
        before.root_hash,
        after.root_hash,
        [b64(p) for p in proof["consistency_path"]],
    )


@pytest.mark.django_db(transaction=True)
def test_audit_verify_runs_in_autocommit_as_the_command_line_does(log_of, capsys) -> None:  # type: ignore[no-untyped-def]
    log_of(45, batches=2)
    call_command("audit_verify")
    assert "audit log verifies: 45 entries" in capsys.readouterr().out
