"""The citizen portal's pages, tried by the citizen, another citizen and a holder's admin."""

from __future__ import annotations

import pytest
from django.test import Client

from broker.audit.sequencer import sequence
from broker.models import User
from consent import services
from consent.models import ConsentModule, ConsentRecord, IdentityLink

RESEARCH, POLICY = "dpv:ScientificResearch", "dpv:PublicPolicy"


def browser(user: User, **options: bool) -> Client:
    client = Client(**options)
    client.force_login(user)
    return client


def give(citizen: User, module: ConsentModule, *purposes: str) -> list[ConsentRecord]:
    return services.consent_give(citizen=citizen, module=module, purposes=list(purposes) or [RESEARCH])


def states(citizen: User) -> dict[str, str]:
    return {record.purpose: record.state for record in ConsentRecord.objects.filter(citizen=citizen)}


# --- linking ----------------------------------------------------------------------------------------


def test_a_citizen_links_her_account_with_a_code_from_the_holder(alice, holder) -> None:  # type: ignore[no-untyped-def]
    _, code = services.link_code_issue(actor="system", holder=holder, subject_ref="CUST-0001")
    client = browser(alice)
    page = client.get("/me/link/")
    assert "Link code from your data holder" in page.content.decode()
    response = client.post("/me/link/", {"code": code}, follow=True)
    assert response.redirect_chain == [("/me/", 302)]
    assert "Your account is now linked with Volta Énergie." in response.content.decode()
    assert IdentityLink.objects.get(citizen=alice).subject_ref == "CUST-0001"


def test_a_wrong_code_shows_a_helpful_message_and_links_nothing(alice, holder) -> None:  # type: ignore[no-untyped-def]
    response = browser(alice).post("/me/link/", {"code": "AAAA-BBBB-CCCC-DDDD-EEEE"})
    assert response.status_code == 200
    assert "This code is not valid: it may be mistyped, used already or expired." in response.content.decode()
    assert not IdentityLink.objects.exists()


def test_a_second_link_with_the_same_holder_is_refused_on_the_page(alice, holder, alice_linked) -> None:  # type: ignore[no-untyped-def]
    _, code = services.link_code_issue(actor="system", holder=holder, subject_ref="CUST-0009")
    response = browser(alice).post("/me/link/", {"code": code})
    assert "already linked" in response.content.decode()
    assert IdentityLink.objects.filter(citizen=alice).count() == 1


# --- the dashboard ----------------------------------------------------------------------------------


def test_the_dashboard_shows_each_holder_its_consents_and_the_forms_waiting(alice, alice_linked, module) -> None:  # type: ignore[no-untyped-def]
    (record,) = give(alice, module, RESEARCH)
    page = browser(alice).get("/me/").content.decode()
    assert "Volta Énergie" in page
    assert f"/me/consents/{record.pk}/" in page
    assert f"/me/consents/{record.pk}/pause/" in page
    assert f"/me/consents/{record.pk}/resume/" not in page
    assert f"/me/modules/{module.pk}/" in page  # one purpose is still open
    assert f"/me/links/{alice_linked.pk}/unlink" in page
    assert "/me/link/" in page


def test_a_fully_answered_module_is_no_longer_offered(alice, alice_linked, module) -> None:  # type: ignore[no-untyped-def]
    give(alice, module, RESEARCH, POLICY)
    assert f"/me/modules/{module.pk}/" not in browser(alice).get("/me/").content.decode()


# --- the consent form --------------------------------------------------------------------------------


def test_the_consent_form_says_who_what_why_for_whom_and_how_long(alice, alice_linked, module, holder) -> None:  # type: ignore[no-untyped-def]
    page = browser(alice).get(f"/me/modules/{module.pk}/").content.decode()
    for expected in [
        "Volta Énergie",
        holder.legal_identifier,
        "dpv-pd:EnergyConsumption",
        "Scientific research",
        "Public policy",
        "public-authority",
        "365 days",
        module.title_en,
        module.notice_en,
        module.risks_en,
        "<fieldset",
        "<legend>",
    ]:
        assert expected in page, expected
    assert "checked" not in page  # nothing ticked in advance


@pytest.mark.parametrize("how", ["cookie", "header"])
def test_the_consent_form_is_in_french_for_a_french_reader(alice, alice_linked, module, how) -> None:  # type: ignore[no-untyped-def]
    client = browser(alice)
    if how == "cookie":
        client.cookies["django_language"] = "fr"
        page = client.get(f"/me/modules/{module.pk}/").content.decode()
    else:
        page = client.get(f"/me/modules/{module.pk}/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert module.title_fr.replace("'", "&#x27;") in page
    assert module.notice_fr in page
    assert module.risks_fr in page
    assert module.notice_en not in page


def test_giving_consent_to_one_purpose_through_the_form_creates_exactly_that_record(
    alice, alice_linked, module
) -> None:  # type: ignore[no-untyped-def]
    response = browser(alice).post(f"/me/modules/{module.pk}/", {"purposes": [RESEARCH]})
    assert response.status_code == 302
    assert response["Location"] == "/me/"
    (record,) = ConsentRecord.objects.filter(citizen=alice)
    assert (record.module, record.purpose, record.state) == (module, RESEARCH, "given")


def test_submitting_the_form_without_a_purpose_gives_nothing(alice, alice_linked, module) -> None:  # type: ignore[no-untyped-def]
    response = browser(alice).post(f"/me/modules/{module.pk}/", {})
    assert response.status_code == 200
    assert "Tick at least one purpose" in response.content.decode()
    assert not ConsentRecord.objects.exists()


def test_a_module_of_a_holder_the_citizen_is_not_linked_with_is_not_found(bob, module) -> None:  # type: ignore[no-untyped-def]
    client = browser(bob)
    assert client.get(f"/me/modules/{module.pk}/").status_code == 404
    assert client.post(f"/me/modules/{module.pk}/", {"purposes": [RESEARCH]}).status_code == 404
    assert not ConsentRecord.objects.exists()


# --- one-click actions -------------------------------------------------------------------------------


def test_pausing_resuming_and_withdrawing_through_the_buttons_change_the_state(alice, alice_linked, module) -> None:  # type: ignore[no-untyped-def]
    (record,) = give(alice, module, RESEARCH)
    client = browser(alice)
    for action, state in [("pause", "paused"), ("resume", "given"), ("renew", "renewed"), ("withdraw", "withdrawn")]:
        response = client.post(f"/me/consents/{record.pk}/{action}/", follow=True)
        assert response.redirect_chain == [("/me/", 302)]
        record.refresh_from_db()
        assert record.state == state


def test_a_refused_action_shows_the_reason_and_changes_nothing(alice, alice_linked, module) -> None:  # type: ignore[no-untyped-def]
    (record,) = give(alice, module, RESEARCH)
    services.consent_withdraw(citizen=alice, record=record)
    response = browser(alice).post(f"/me/consents/{record.pk}/pause/", follow=True)
    assert "A consent that is withdrawn cannot be paused." in response.content.decode()
    record.refresh_from_db()
    assert record.state == "withdrawn"
    assert record.events.count() == 2


def test_an_unknown_action_is_not_found(alice, alice_linked, module) -> None:  # type: ignore[no-untyped-def]
    (record,) = give(alice, module, RESEARCH)
    assert browser(alice).post(f"/me/consents/{record.pk}/delete/").status_code == 404
    assert states(alice) == {RESEARCH: "given"}


def test_withdraw_everything_withdraws_each_consent_given_to_that_holder(alice, alice_linked, module) -> None:  # type: ignore[no-untyped-def]
    _, policy = give(alice, module, RESEARCH, POLICY)
    services.consent_pause(citizen=alice, record=policy)
    response = browser(alice).post(f"/me/links/{alice_linked.pk}/withdraw-all", follow=True)
    assert "You withdrew the 2 consents given to Volta Énergie." in response.content.decode()
    assert states(alice) == {RESEARCH: "withdrawn", POLICY: "withdrawn"}
    assert IdentityLink.objects.get(pk=alice_linked.pk).unlinked_at is None  # the link stays


def test_unlinking_asks_first_then_removes_the_link_and_withdraws_its_consents(alice, alice_linked, module) -> None:  # type: ignore[no-untyped-def]
    give(alice, module, RESEARCH)
    client = browser(alice)
    confirm = client.get(f"/me/links/{alice_linked.pk}/unlink").content.decode()
    assert "Unlink from Volta Énergie and withdraw my consents" in confirm
    assert IdentityLink.objects.get(pk=alice_linked.pk).unlinked_at is None
    response = client.post(f"/me/links/{alice_linked.pk}/unlink")
    assert response["Location"] == "/me/"
    assert IdentityLink.objects.get(pk=alice_linked.pk).unlinked_at is not None
    assert states(alice) == {RESEARCH: "withdrawn"}


# --- one consent, its receipt and its proof -------------------------------------------------------


def test_the_consent_page_verifies_the_receipt_and_then_the_inclusion_proof(alice, alice_linked, module) -> None:  # type: ignore[no-untyped-def]
    (record,) = give(alice, module, RESEARCH)
    client = browser(alice)
    page = client.get(f"/me/consents/{record.pk}/").content.decode()
    assert "Signature verified" in page
    assert f"/api/v1/consents/{record.pk}/receipt" in page
    assert "will be within seconds" in page
    assert "Included in the signed log" not in page

    sequence()
    page = client.get(f"/me/consents/{record.pk}/").content.decode()
    assert "Signature verified" in page
    assert "Included in the signed log" in page
    assert "could not be verified" not in page


def test_the_consent_page_shows_every_event_of_the_history(alice, alice_linked, module) -> None:  # type: ignore[no-untyped-def]
    (record,) = give(alice, module, RESEARCH)
    services.consent_pause(citizen=alice, record=record)
    services.consent_resume(citizen=alice, record=record)
    page = browser(alice).get(f"/me/consents/{record.pk}/").content.decode()
    assert page.index("You agreed") < page.index("You paused it") < page.index("You resumed it")


# --- other people ----------------------------------------------------------------------------------


def test_another_citizen_gets_404_on_alices_pages_and_changes_nothing(alice, alice_linked, bob, module) -> None:  # type: ignore[no-untyped-def]
    (record,) = give(alice, module, RESEARCH)
    intruder = browser(bob)
    assert intruder.get(f"/me/consents/{record.pk}/").status_code == 404
    for action in ("pause", "resume", "renew", "withdraw"):
        assert intruder.post(f"/me/consents/{record.pk}/{action}/").status_code == 404
    assert intruder.get(f"/me/links/{alice_linked.pk}/unlink").status_code == 404
    assert intruder.post(f"/me/links/{alice_linked.pk}/unlink").status_code == 404
    assert intruder.post(f"/me/links/{alice_linked.pk}/withdraw-all").status_code == 404
    assert states(alice) == {RESEARCH: "given"}
    assert record.events.count() == 1
    assert IdentityLink.objects.get(pk=alice_linked.pk).unlinked_at is None


def test_a_non_citizen_gets_404_on_every_citizen_page(alice, alice_linked, holder_admin, module) -> None:  # type: ignore[no-untyped-def]
    (record,) = give(alice, module, RESEARCH)
    client = browser(holder_admin)
    for url in ["/me/", "/me/link/", f"/me/modules/{module.pk}/", f"/me/consents/{record.pk}/"]:
        assert client.get(url).status_code == 404, url
    assert client.post(f"/me/consents/{record.pk}/withdraw/").status_code == 404
    assert client.post(f"/me/links/{alice_linked.pk}/unlink").status_code == 404
    assert states(alice) == {RESEARCH: "given"}


def test_an_anonymous_visitor_is_sent_to_log_in(module) -> None:  # type: ignore[no-untyped-def]
    response = Client().get("/me/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_every_form_of_the_portal_is_protected_against_csrf(alice, alice_linked, holder, module) -> None:  # type: ignore[no-untyped-def]
    (record,) = give(alice, module, RESEARCH)
    _, code = services.link_code_issue(actor="system", holder=holder, subject_ref="CUST-0009")
    client = browser(alice, enforce_csrf_checks=True)
    for url, data in [
        ("/me/link/", {"code": code}),
        (f"/me/modules/{module.pk}/", {"purposes": [POLICY]}),
        (f"/me/consents/{record.pk}/pause/", {}),
        (f"/me/consents/{record.pk}/withdraw/", {}),
        (f"/me/links/{alice_linked.pk}/withdraw-all", {}),
        (f"/me/links/{alice_linked.pk}/unlink", {}),
    ]:
        assert client.post(url, data).status_code == 403, url
    assert states(alice) == {RESEARCH: "given"}
    assert record.events.count() == 1
    assert IdentityLink.objects.filter(citizen=alice, unlinked_at__isnull=True).count() == 1
