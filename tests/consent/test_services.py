"""Consent services: links, modules and consent records, each change audited with its receipt."""

from __future__ import annotations

import json

import pytest
from django.utils import timezone

from broker.errors import Conflict, Forbidden, InvalidInput
from broker.models import AuditBody
from consent import services
from consent.models import ConsentRecord, IdentityLink, LinkCode
from tests.consent.conftest import MODULE_CONTENT, link


def audited(verb: str) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(bytes(body.canonical)) for body in AuditBody.objects.filter(verb=verb)]


def test_a_link_code_is_long_stored_hashed_and_works_once(alice, bob, holder) -> None:  # type: ignore[no-untyped-def]
    link_code, code = services.link_code_issue(actor="system", holder=holder, subject_ref="CUST-9")
    assert len(code.replace("-", "")) == 20
    assert code not in link_code.code_hash
    assert audited("link_code.issued")[0]["subject"] == f"organisation:{holder.slug}"
    linked = services.link_redeem(citizen=alice, code=code.lower())
    assert (linked.holder, linked.subject_ref) == (holder, "CUST-9")
    assert AuditBody.objects.get(verb="identity.linked").citizen_id == alice.pk
    with pytest.raises(InvalidInput, match="not valid"):
        services.link_redeem(citizen=bob, code=code)


def test_an_expired_code_is_refused(alice, holder) -> None:  # type: ignore[no-untyped-def]
    _, code = services.link_code_issue(actor="system", holder=holder, subject_ref="CUST-9")
    LinkCode.objects.update(expires_at=timezone.now())
    with pytest.raises(InvalidInput):
        services.link_redeem(citizen=alice, code=code)
    assert not IdentityLink.objects.exists()


def test_redeeming_is_rate_limited(alice, holder, still_clock) -> None:  # type: ignore[no-untyped-def]
    for _ in range(services.REDEEM_ATTEMPTS_PER_HOUR):
        with pytest.raises(InvalidInput):
            services.link_redeem(citizen=alice, code="AAAA-BBBB-CCCC-DDDD-EEEE")
    _, code = services.link_code_issue(actor="system", holder=holder, subject_ref="CUST-9")
    with pytest.raises(Forbidden, match="Too many attempts"):
        services.link_redeem(citizen=alice, code=code)


def test_a_data_user_cannot_issue_link_codes(data_user) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(Forbidden):
        services.link_code_issue(actor="system", holder=data_user, subject_ref="x")


def test_a_citizen_links_once_per_holder(alice, holder, alice_linked) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(Conflict):
        link(alice, holder, "CUST-0003")


def test_publishing_new_text_makes_a_new_version_and_retires_the_old(holder, holder_admin, module) -> None:  # type: ignore[no-untyped-def]
    same = services.module_publish(actor=holder_admin, holder=holder, slug="energy", content=MODULE_CONTENT)
    assert same.pk == module.pk
    changed = services.module_publish(
        actor=holder_admin, holder=holder, slug="energy", content={**MODULE_CONTENT, "duration_days": 180}
    )
    assert changed.version == 2
    assert changed.notice_hash != module.notice_hash
    module.refresh_from_db()
    assert module.retired_at is not None
    assert [e["details"]["version"] for e in audited("consent_module.published")] == [1, 2]


def test_giving_consent_makes_one_record_per_purpose_with_event_receipt_and_audit(alice, alice_linked, module) -> None:  # type: ignore[no-untyped-def]
    records = services.consent_give(citizen=alice, module=module, purposes=["dpv:ScientificResearch"])
    assert len(records) == 1
    record = records[0]
    assert record.state == "given"
    assert record.is_active()
    assert (record.expires_at - record.given_at).days == 365
    event = record.events.get()
    assert event.event == "given"
    assert event.receipt.count(".") == 2
    body = AuditBody.objects.get(verb="consent.given")
    assert body.citizen_id == alice.pk
    assert body.entry_id == event.audit_entry_id


def test_consent_needs_a_link_with_the_holder(alice, module) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(Forbidden, match="Link your account"):
        services.consent_give(citizen=alice, module=module, purposes=["dpv:ScientificResearch"])


def test_consent_only_to_the_modules_own_purposes(alice, alice_linked, module) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput):
        services.consent_give(citizen=alice, module=module, purposes=["dpv:Marketing"])
    assert not ConsentRecord.objects.exists()


def test_withdraw_pause_resume_renew_append_events(alice, alice_linked, module) -> None:  # type: ignore[no-untyped-def]
    (record,) = services.consent_give(citizen=alice, module=module, purposes=["dpv:PublicPolicy"])
    services.consent_pause(citizen=alice, record=record)
    assert not ConsentRecord.objects.get(pk=record.pk).is_active()
    services.consent_resume(citizen=alice, record=record)
    services.consent_renew(citizen=alice, record=record)
    services.consent_withdraw(citizen=alice, record=record)
    services.consent_withdraw(citizen=alice, record=record)  # already done: no new event
    record.refresh_from_db()
    assert record.state == "withdrawn"
    assert [e.event for e in record.events.all()] == ["given", "paused", "resumed", "renewed", "withdrawn"]
    assert AuditBody.objects.filter(verb__startswith="consent.").count() == 5
    with pytest.raises(Conflict):
        services.consent_renew(citizen=alice, record=record)


def test_the_database_refuses_to_rewrite_a_consent_event(alice, alice_linked, module) -> None:  # type: ignore[no-untyped-def]
    from django.db import ProgrammingError, connection, transaction

    (record,) = services.consent_give(citizen=alice, module=module, purposes=["dpv:PublicPolicy"])
    event = record.events.get()
    with pytest.raises(ProgrammingError, match="pgtrigger"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE consent_consentevent SET state = 'withdrawn' WHERE id = %s", [event.pk])
    assert record.events.get().state == "given"


def test_a_new_module_version_asks_again_and_the_old_consent_keeps_its_scope(  # type: ignore[no-untyped-def]
    alice, alice_linked, holder, holder_admin, module
) -> None:
    (old,) = services.consent_give(citizen=alice, module=module, purposes=["dpv:ScientificResearch"])
    services.module_publish(
        actor=holder_admin, holder=holder, slug="energy", content={**MODULE_CONTENT, "notice_en": "New."}
    )
    module.refresh_from_db()
    with pytest.raises(Conflict, match="newer version"):
        services.consent_give(citizen=alice, module=module, purposes=["dpv:PublicPolicy"])
    with pytest.raises(Conflict, match="newer version"):
        services.consent_renew(citizen=alice, record=old)
    old.refresh_from_db()
    assert old.is_active()
    assert old.module_id == module.pk


def test_unlinking_withdraws_the_consents_given_to_that_holder(alice, alice_linked, module) -> None:  # type: ignore[no-untyped-def]
    (record,) = services.consent_give(citizen=alice, module=module, purposes=["dpv:ScientificResearch"])
    services.link_remove(citizen=alice, link=alice_linked)
    record.refresh_from_db()
    assert record.state == "withdrawn"
    assert AuditBody.objects.filter(verb="identity.unlinked", citizen_id=alice.pk).count() == 1


def test_withdrawing_everything_touches_only_that_holders_standing_consents(alice, alice_linked, module) -> None:  # type: ignore[no-untyped-def]
    _research, policy_ = services.consent_give(citizen=alice, module=module, purposes=list(MODULE_CONTENT["purposes"]))
    services.consent_pause(citizen=alice, record=policy_)
    assert services.consent_withdraw_all(citizen=alice, holder=module.holder) == 2
    assert set(ConsentRecord.objects.values_list("state", flat=True)) == {"withdrawn"}
    assert AuditBody.objects.filter(verb="consent.withdrawn", citizen_id=alice.pk).count() == 2
    assert services.consent_withdraw_all(citizen=alice, holder=module.holder) == 0


def test_renewing_needs_a_live_link_and_a_consent_that_is_not_paused(alice, alice_linked, module) -> None:  # type: ignore[no-untyped-def]
    (record,) = services.consent_give(citizen=alice, module=module, purposes=["dpv:ScientificResearch"])
    services.consent_pause(citizen=alice, record=record)
    with pytest.raises(Conflict, match="resumed, not renewed"):
        services.consent_renew(citizen=alice, record=record)
    services.consent_resume(citizen=alice, record=record)
    ConsentRecord.objects.filter(pk=record.pk).update(state="expired")
    IdentityLink.objects.filter(pk=alice_linked.pk).update(unlinked_at=timezone.now())
    with pytest.raises(Forbidden, match="Link your account"):
        services.consent_renew(citizen=alice, record=record)
    assert ConsentRecord.objects.get(pk=record.pk).state == "expired"
