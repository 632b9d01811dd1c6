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


# --- rights requests forwarded to the organisations -------------------------------------------------


def _endpoint(organisation):  # type: ignore[no-untyped-def]
    from broker.models import WebhookEndpoint

    return WebhookEndpoint.objects.create(
        organisation=organisation, url="https://hooks.example.org/t", created_by="system"
    )


def test_a_rights_request_is_forwarded_to_the_linked_holder_with_its_reference(alice, alice_linked, holder) -> None:  # type: ignore[no-untyped-def]
    from broker.models import WebhookDelivery

    _endpoint(holder)
    response = client_for(alice).post(
        "/api/v1/me/rights/", {"kind": "rectification", "details": "My address changed."}, format="json"
    )
    assert response.status_code == 201, response.json()
    filed = response.json()
    (recipient,) = filed["recipients"]
    assert (recipient["organisation"], recipient["state"], recipient["delivery_state"]) == (
        "volta",
        "pending",
        "pending",
    )
    told = WebhookDelivery.objects.get(event_type="rights-rectification")
    assert told.payload == {
        "request": filed["id"],
        "kind": "rectification",
        "details": "My address changed.",
        "subject_ref": "CUST-0001",
    }
    assert AuditBody.objects.filter(verb="rights.requested", citizen_id=alice.pk).exists()


def test_the_citizen_sees_no_endpoint_and_dead_deliveries_as_such(alice, alice_linked, holder) -> None:  # type: ignore[no-untyped-def]
    from broker.models import WebhookDelivery

    no_hook = services.rights_request_file(citizen=alice, kind="objection")
    assert client_for(alice).get(f"/api/v1/me/rights/{no_hook.pk}").json()["recipients"][0]["state"] == "no_endpoint"
    _endpoint(holder)
    filed = services.rights_request_file(citizen=alice, kind="objection")
    WebhookDelivery.objects.update(state=WebhookDelivery.State.DEAD)
    (recipient,) = client_for(alice).get(f"/api/v1/me/rights/{filed.pk}").json()["recipients"]
    assert recipient["status"] == "not_delivered"
    page = client_for(alice).get("/me/rights/")
    assert page.status_code == 200
    assert "Volta" in page.content.decode()


def test_another_citizen_cannot_see_a_rights_request(alice, alice_linked, bob) -> None:  # type: ignore[no-untyped-def]
    filed = services.rights_request_file(citizen=alice, kind="erasure")
    assert client_for(bob).get(f"/api/v1/me/rights/{filed.pk}").status_code == 404
    assert client_for(bob).get("/api/v1/me/rights/").json() == []
    assert client_for(alice).get("/api/v1/me/rights/not-an-id").status_code == 404


def test_an_organisation_cannot_reach_the_rights_api(holder_admin) -> None:  # type: ignore[no-untyped-def]
    assert client_for(holder_admin).get("/api/v1/me/rights/").status_code == 403


def test_the_portal_files_a_request(alice, alice_linked, holder) -> None:  # type: ignore[no-untyped-def]
    from consent.rights import RightsRequest

    response = client_for(alice).post("/me/rights/", {"kind": "erasure", "details": ""})
    assert response.status_code == 302
    assert RightsRequest.objects.get(citizen=alice).kind == "erasure"


def test_erasure_forwards_erasure_notices_before_the_links_go(alice, alice_linked, holder) -> None:  # type: ignore[no-untyped-def]
    from broker.models import WebhookDelivery
    from consent.rights import RightsRecipient, RightsRequest

    _endpoint(holder)
    services.citizen_erase(citizen=alice)
    notice = WebhookDelivery.objects.get(event_type="rights-erasure")
    assert notice.payload["subject_ref"] == "CUST-0001"
    request = RightsRequest.objects.get()
    assert request.citizen is None  # kept, no longer naming anyone
    assert RightsRecipient.objects.get().delivery == notice
