"""My data and account: the download of everything Tiers holds, and the erasure of the account, portal and API."""

from __future__ import annotations

import datetime
import io
import time
from types import SimpleNamespace

import pytest
from django.contrib import auth
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from broker.audit.sequencer import sequence
from broker.models import AuditBody, AuditEntry, Organisation, OutboxEvent, User, WebhookDelivery, WebhookEndpoint
from consent import accounts, export, services
from consent.models import CitizenProfile, ConsentModule, ConsentRecord, IdentityLink
from tests.conftest import client_for
from tests.factories import PASSWORD, CitizenFactory

RESEARCH, POLICY = "dpv:ScientificResearch", "dpv:PublicPolicy"
ERASURE = "/me/account/delete"


def browser(user: User, **options: bool) -> Client:
    client = Client(**options)
    client.force_login(user)
    return client


def endpoint(organisation: Organisation) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(
        organisation=organisation, url="https://hooks.example.org/t", created_by="system"
    )


def held_about(citizen_id: int) -> dict[str, int]:
    """What Tiers holds about a citizen, counted row by row."""
    return {
        "accounts": User.objects.filter(pk=citizen_id).count(),
        "profiles": CitizenProfile.objects.filter(user_id=citizen_id).count(),
        "links": IdentityLink.objects.filter(citizen_id=citizen_id).count(),
        "consents": ConsentRecord.objects.filter(citizen_id=citizen_id).count(),
        "standing": ConsentRecord.objects.filter(citizen_id=citizen_id, state="given").count(),
        "audit bodies": AuditBody.objects.filter(citizen_id=citizen_id).count(),
    }


def logged_in(client: Client) -> bool:
    return auth.get_user(client).is_authenticated  # type: ignore[arg-type]


@pytest.fixture
def alice_consents(alice: User, alice_linked: IdentityLink, module: ConsentModule) -> list[ConsentRecord]:
    return services.consent_give(citizen=alice, module=module, purposes=[RESEARCH, POLICY])


# --- the page and the download -----------------------------------------------------------------------


def test_the_dashboard_leads_to_my_data_and_account(alice) -> None:  # type: ignore[no-untyped-def]
    client = browser(alice)
    assert 'href="/me/account/"' in client.get("/me/").content.decode()
    page = client.get("/me/account/").content.decode()
    assert "Download everything Tiers holds about me" in page
    assert 'href="/me/account/export"' in page
    assert f'href="{ERASURE}"' in page


def test_the_download_is_the_api_export_byte_for_byte_as_a_dated_attachment(  # type: ignore[no-untyped-def]
    alice, alice_consents, monkeypatch
) -> None:
    services.consent_withdraw(citizen=alice, record=alice_consents[0])
    at = datetime.datetime(2026, 3, 14, 9, 26, 53, tzinfo=datetime.UTC)
    monkeypatch.setattr(export, "timezone", SimpleNamespace(now=lambda: at, localdate=timezone.localdate))

    download = browser(alice).get("/me/account/export")
    api = client_for(alice).get("/api/v1/me/export")

    assert download.status_code == api.status_code == 200
    assert download.content == api.content
    assert download["Content-Type"] == "application/json"
    today = timezone.localdate().isoformat()
    assert download["Content-Disposition"] == f'attachment; filename="tiers-export-{today}.json"'
    assert download["Content-Disposition"] == api["Content-Disposition"]
    assert "no-store" in download["Cache-Control"]
    assert download.json()["account"]["username"] == "alice"
    assert download.json()["exported_at"] == "2026-03-14T09:26:53Z"


def test_the_download_holds_nothing_of_another_citizen(alice, alice_linked, bob, bob_linked, module) -> None:  # type: ignore[no-untyped-def]
    services.consent_give(citizen=bob, module=module, purposes=[POLICY])
    download = browser(alice).get("/me/account/export").json()
    assert download["consents"] == []
    assert "CUST-0002" not in str(download)


# --- erasure in the portal -----------------------------------------------------------------------------


def test_the_erasure_page_says_what_happens_and_asks_for_the_password_again(alice) -> None:  # type: ignore[no-untyped-def]
    page = browser(alice).get(ERASURE).content.decode()
    for words in (
        "Every consent you gave is withdrawn",
        "The links between your account and the organisations",
        "Your profile",
        "The content of every entry about you in Tiers",
        "keeps a fingerprint (a hash)",
        "This cannot be undone.",
        'href="/me/account/export"',
        'type="password"',
        'autocomplete="current-password"',
        'type="checkbox"',
    ):
        assert words in page, words


def test_erasure_with_the_password_withdraws_tells_removes_erases_and_logs_out(  # type: ignore[no-untyped-def]
    alice, alice_consents, bob, bob_linked, module, holder
) -> None:
    endpoint(holder)
    services.consent_give(citizen=bob, module=module, purposes=[POLICY])
    sequence()
    alice_id, leaves = alice.pk, AuditEntry.objects.count()
    client = browser(alice)

    response = client.post(ERASURE, {"password": PASSWORD, "confirm": "on"})

    assert response.status_code == 302
    assert response["Location"] == "/accounts/goodbye/"
    assert not logged_in(client)
    assert held_about(alice_id) == dict.fromkeys(held_about(alice_id), 0)
    # Every consent withdrawn before it went, and its holder told as with any withdrawal.
    withdrawn = OutboxEvent.objects.filter(topic="consent.withdrawn")
    assert sorted(event.payload["consent"] for event in withdrawn) == sorted(str(r.pk) for r in alice_consents)
    told = WebhookDelivery.objects.filter(endpoint__organisation=holder, event_type="consent-withdrawn")
    assert sorted(delivery.payload["purpose"] for delivery in told) == [POLICY, RESEARCH]
    assert {delivery.payload["subject_ref"] for delivery in told} == {"CUST-0001"}
    assert WebhookDelivery.objects.filter(event_type="rights-erasure").count() == 1
    # The log keeps its leaves, records the erasure without naming her, and still verifies.
    assert AuditEntry.objects.count() > leaves
    assert AuditBody.objects.filter(verb="audit.citizen_erased").exists()
    sequence()
    out = io.StringIO()
    call_command("audit_verify", stdout=out)
    assert "audit log verifies" in out.getvalue()
    # Bob is untouched.
    assert held_about(bob.pk) | {"audit bodies": 0} == {
        "accounts": 1, "profiles": 1, "links": 1, "consents": 1, "standing": 1, "audit bodies": 0,
    }  # fmt: skip
    assert AuditBody.objects.filter(citizen_id=bob.pk).exists()
    goodbye = client.get(response["Location"])
    assert goodbye.status_code == 200
    assert "Your account is deleted" in goodbye.content.decode()
    assert client.get("/me/").status_code == 302  # to the login page: nobody is logged in


def test_a_wrong_password_says_so_and_changes_nothing(alice, alice_consents) -> None:  # type: ignore[no-untyped-def]
    before, entries = held_about(alice.pk), AuditEntry.objects.count()
    client = browser(alice)
    response = client.post(ERASURE, {"password": "not my password", "confirm": "on"})
    assert response.status_code == 200
    assert "This is not your password. Nothing was deleted: please try again." in response.content.decode()
    assert held_about(alice.pk) == before
    assert AuditEntry.objects.count() == entries
    assert not OutboxEvent.objects.filter(topic="consent.withdrawn").exists()
    assert logged_in(client)


def test_the_confirmation_box_must_be_ticked(alice, alice_consents) -> None:  # type: ignore[no-untyped-def]
    before = held_about(alice.pk)
    response = browser(alice).post(ERASURE, {"password": PASSWORD})
    assert "Tick this box to confirm, or keep your account." in response.content.decode()
    assert held_about(alice.pk) == before


def test_password_attempts_are_limited_and_the_limit_holds_for_the_right_one(alice, alice_consents) -> None:  # type: ignore[no-untyped-def]
    before = held_about(alice.pk)
    client = browser(alice)
    for _ in range(accounts.ERASURE_ATTEMPTS_PER_CITIZEN):
        assert client.post(ERASURE, {"password": "guess", "confirm": "on"}).status_code == 200
    response = client.post(ERASURE, {"password": PASSWORD, "confirm": "on"})
    assert response.status_code == 429
    assert "Too many attempts. Please wait a quarter of an hour and try again." in response.content.decode()
    assert held_about(alice.pk) == before


def test_the_session_decides_whose_account_goes(alice, alice_consents, bob, bob_linked, module) -> None:  # type: ignore[no-untyped-def]
    alice.set_password("alice's own passphrase")
    alice.save()
    services.consent_give(citizen=bob, module=module, purposes=[POLICY])
    alice_before, bob_id = held_about(alice.pk), bob.pk
    intruder = browser(bob)

    # Bob knows Alice's password: in his session it is simply not his, and nothing changes for anyone.
    refused = intruder.post(ERASURE, {"password": "alice's own passphrase", "confirm": "on"})
    assert "This is not your password." in refused.content.decode()
    assert held_about(bob_id)["accounts"] == 1
    # Whatever he adds to the form, his own password erases his own account only.
    intruder.post(ERASURE, {"password": PASSWORD, "confirm": "on", "citizen": alice.pk, "username": "alice"})
    assert held_about(bob_id)["accounts"] == 0
    assert held_about(alice.pk) == alice_before


@pytest.mark.parametrize("persona", ["holder_admin", "operator", "stranger"])
def test_anyone_but_a_citizen_gets_404_and_changes_nothing(persona, alice, alice_consents, request) -> None:  # type: ignore[no-untyped-def]
    user = request.getfixturevalue(persona)
    client = browser(user)
    for url in ("/me/account/", "/me/account/export", ERASURE):
        assert client.get(url).status_code == 404, url
    assert client.post(ERASURE, {"password": PASSWORD, "confirm": "on"}).status_code == 404
    assert User.objects.filter(pk=user.pk).exists()
    assert held_about(alice.pk)["standing"] == 2


def test_an_anonymous_visitor_is_sent_to_log_in(db) -> None:  # type: ignore[no-untyped-def]
    for url in ("/me/account/", "/me/account/export", ERASURE):
        response = Client().get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")
    assert Client().post(ERASURE, {"password": PASSWORD, "confirm": "on"}).status_code == 302


def test_the_erasure_form_is_protected_against_csrf(alice, alice_consents) -> None:  # type: ignore[no-untyped-def]
    before = held_about(alice.pk)
    response = browser(alice, enforce_csrf_checks=True).post(ERASURE, {"password": PASSWORD, "confirm": "on"})
    assert response.status_code == 403
    assert held_about(alice.pk) == before


# --- an account without a password: it logged in at an identity provider -----------------------------


@pytest.fixture
def camille(db: None) -> User:
    """A citizen whose account was opened at an identity provider: no usable password."""
    citizen = CitizenFactory(username="camille")
    citizen.set_unusable_password()
    citizen.save()
    return citizen


def with_provider_login(client: Client, seconds_ago: float) -> None:
    session = client.session
    session[accounts.PROVIDER_LOGIN_SESSION_KEY] = time.time() - seconds_ago
    session.save()


def test_an_account_without_password_is_asked_to_log_in_again_first(camille) -> None:  # type: ignore[no-untyped-def]
    client = browser(camille)
    page = client.get(ERASURE).content.decode()
    assert "Your account has no password" in page
    assert 'type="password"' not in page
    response = client.post(ERASURE, {"confirm": "on"})
    assert "Please log in again with your identity provider first. Nothing was deleted." in response.content.decode()
    with_provider_login(client, seconds_ago=accounts.PROVIDER_LOGIN_FRESH_SECONDS + 1)
    client.post(ERASURE, {"confirm": "on"})
    assert User.objects.filter(pk=camille.pk).exists()


def test_an_account_without_password_is_erased_minutes_after_a_login_at_its_provider(camille) -> None:  # type: ignore[no-untyped-def]
    client = browser(camille)
    with_provider_login(client, seconds_ago=60)
    page = client.get(ERASURE).content.decode()
    assert 'type="checkbox"' in page
    assert 'type="password"' not in page
    response = client.post(ERASURE, {"confirm": "on"})
    assert response["Location"] == "/accounts/goodbye/"
    assert not User.objects.filter(pk=camille.pk).exists()


# --- erasure through the API -----------------------------------------------------------------------------

API = "/api/v1/me/erasure"


def test_the_api_erases_the_account_with_the_password_and_ends_the_session(alice, alice_consents, holder) -> None:  # type: ignore[no-untyped-def]
    endpoint(holder)
    alice_id = alice.pk
    api = client_for(alice)
    response = api.post(API, {"password": PASSWORD}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["erased_audit_entries"] >= 5  # linked, 2 given, 2 withdrawn, unlinked
    assert held_about(alice_id) == dict.fromkeys(held_about(alice_id), 0)
    assert OutboxEvent.objects.filter(topic="consent.withdrawn").count() == 2
    assert api.get("/api/v1/me/consents/").status_code == 401


def test_the_api_refuses_a_wrong_password_with_a_problem_and_changes_nothing(alice, alice_consents) -> None:  # type: ignore[no-untyped-def]
    before, entries = held_about(alice.pk), AuditEntry.objects.count()
    api = client_for(alice)
    for body in ({"password": "not my password"}, {}):
        response = api.post(API, body, format="json")
        assert response.status_code == 403
        assert response["Content-Type"].startswith("application/problem+json")
        assert response.json()["detail"] == "This is not the account's password. Nothing was erased."
    assert held_about(alice.pk) == before
    assert AuditEntry.objects.count() == entries
    assert api.get("/api/v1/me/consents/").status_code == 200


def test_the_api_limits_password_attempts(alice, alice_consents) -> None:  # type: ignore[no-untyped-def]
    api = client_for(alice)
    for _ in range(accounts.ERASURE_ATTEMPTS_PER_CITIZEN):
        api.post(API, {"password": "guess"}, format="json")
    response = api.post(API, {"password": PASSWORD}, format="json")
    assert response.status_code == 429
    assert response["Content-Type"].startswith("application/problem+json")
    assert response["Retry-After"] == str(accounts.ERASURE_WINDOW_SECONDS)
    assert held_about(alice.pk)["accounts"] == 1


def test_the_api_needs_the_csrf_token_of_the_session(alice, alice_consents) -> None:  # type: ignore[no-untyped-def]
    from rest_framework.test import APIClient

    api = APIClient(enforce_csrf_checks=True)
    api.force_login(alice)
    response = api.post(API, {"password": PASSWORD}, format="json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert held_about(alice.pk)["accounts"] == 1


def test_the_api_asks_an_account_without_password_for_a_fresh_login_at_its_provider(camille) -> None:  # type: ignore[no-untyped-def]
    api = client_for(camille)
    response = api.post(API, {}, format="json")
    assert response.status_code == 403
    assert "Log in again at your identity provider" in response.json()["detail"]
    assert User.objects.filter(pk=camille.pk).exists()


def test_an_organisation_cannot_reach_the_erasure_api(holder_admin, operator) -> None:  # type: ignore[no-untyped-def]
    for person in (holder_admin, operator):
        assert client_for(person).post(API, {"password": PASSWORD}, format="json").status_code == 403
        assert User.objects.filter(pk=person.pk).exists()
