"""The citizen's rights: export everything (Art. 15, 20) and erase the account (Art. 17)."""

from __future__ import annotations

from django.core.management import call_command

from broker.audit import sequencer
from broker.models import AuditBody, AuditEntry, User
from consent import services
from consent.models import ConsentRecord, IdentityLink
from tests.conftest import client_for


def test_the_export_holds_account_links_consents_receipts_and_log_entries(alice, alice_linked, module) -> None:  # type: ignore[no-untyped-def]
    (record,) = services.consent_give(citizen=alice, module=module, purposes=["dpv:ScientificResearch"])
    services.consent_withdraw(citizen=alice, record=record)
    response = client_for(alice).get("/api/v1/me/export")
    assert response.status_code == 200
    assert "attachment" in response["Content-Disposition"]
    exported = response.json()
    assert exported["account"]["username"] == "alice"
    assert exported["identity_links"][0]["subject_ref"] == "CUST-0001"
    (consent,) = exported["consents"]
    assert [e["event"] for e in consent["events"]] == ["given", "withdrawn"]
    assert all(e["receipt"].count(".") == 2 for e in consent["events"])
    verbs = [entry["event"]["verb"] for entry in exported["audit_entries"]]
    assert verbs == ["identity.linked", "consent.given", "consent.withdrawn"]


def test_the_export_holds_nothing_of_another_citizen(alice, alice_linked, bob, bob_linked, module) -> None:  # type: ignore[no-untyped-def]
    services.consent_give(citizen=bob, module=module, purposes=["dpv:PublicPolicy"])
    exported = client_for(alice).get("/api/v1/me/export").json()
    assert exported["consents"] == []
    assert "CUST-0002" not in str(exported)


def test_erasure_withdraws_removes_and_erases_while_the_log_still_verifies(
    alice, alice_linked, bob, bob_linked, module
) -> None:  # type: ignore[no-untyped-def]
    services.consent_give(citizen=alice, module=module, purposes=["dpv:ScientificResearch", "dpv:PublicPolicy"])
    services.consent_give(citizen=bob, module=module, purposes=["dpv:PublicPolicy"])
    sequencer.sequence()
    leaves_before = AuditEntry.objects.count()
    alice_id = alice.pk
    erased = services.citizen_erase(citizen=alice)
    sequencer.sequence()
    assert erased >= 5  # linked, 2 given, 2 withdrawn on unlinking, unlinked
    assert not User.objects.filter(pk=alice_id).exists()
    assert not ConsentRecord.objects.filter(citizen_id=alice_id).exists()
    assert not IdentityLink.objects.filter(citizen_id=alice_id).exists()
    assert not AuditBody.objects.filter(citizen_id=alice_id).exists()
    assert AuditEntry.objects.count() > leaves_before  # leaves stay; the erasure itself is recorded
    assert ConsentRecord.objects.filter(citizen=bob).count() == 1
    call_command("audit_verify")
