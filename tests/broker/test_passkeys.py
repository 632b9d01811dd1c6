"""Passkeys (WebAuthn): registered from the security page, then used at /accounts/2fa/ instead of a TOTP code.

Every answer here is a real WebAuthn answer made by tests.webauthn.SoftAuthenticator and checked by the
real py_webauthn library: what is refused is refused by the same checks a browser's answer goes through.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from django.test import Client

from broker.models import AuditBody, Organisation, User
from broker.security import passkeys
from broker.security.models import Passkey, TOTPDevice
from broker.security.twofactor import PENDING_SESSION_KEY, VERIFIED_SESSION_KEY
from tests.twofactor import enrol, fully_logged_in, give_code, password_login
from tests.webauthn import SoftAuthenticator, b64url

pytestmark = pytest.mark.django_db
ORIGIN = "http://testserver"  # Django's test client: the host "testserver", plain HTTP
PROBLEM = "application/problem+json"
REGISTER_OPTIONS = "/accounts/security/passkeys/options"
REGISTER = "/accounts/security/passkeys/register"
REMOVE = "/accounts/security/passkeys/remove"
LOGIN_OPTIONS = "/accounts/2fa/passkeys/options"
LOGIN_VERIFY = "/accounts/2fa/passkeys/verify"


def events(verb: str) -> list[AuditBody]:
    return list(AuditBody.objects.filter(verb=verb))


def post_json(client: Client, path: str, body: Any = None) -> Any:
    return client.post(path, data=json.dumps(body if body is not None else {}), content_type="application/json")


def register(client: Client, authenticator: SoftAuthenticator, name: str = "work laptop", **answer: Any) -> Any:
    """The security page's ceremony: options, the authenticator's new credential, the server's check."""
    options = post_json(client, REGISTER_OPTIONS).json()
    credential = authenticator.create(options, **{"origin": ORIGIN, **answer})
    return post_json(client, REGISTER, {"name": name, "credential": credential})


def with_passkey(user: User, name: str = "work laptop") -> SoftAuthenticator:
    """A person fully logged in once, who registered a passkey on the security page."""
    authenticator = SoftAuthenticator()
    assert register(fully_logged_in(user), authenticator, name).status_code == 201
    return authenticator


def login_options(user: User) -> tuple[Client, dict[str, Any]]:
    """A new browser past the password, holding the options of a passkey ceremony."""
    client, _ = password_login(user.username)
    response = post_json(client, LOGIN_OPTIONS)
    assert response.status_code == 200, response.content
    return client, response.json()


def verify(client: Client, credential: Any, next_url: str = "") -> Any:
    path = f"{LOGIN_VERIFY}?next={next_url}" if next_url else LOGIN_VERIFY
    return post_json(client, path, {"credential": credential})


def assert_refused(client: Client, response: Any, status: int = 422) -> None:
    """Refused with a problem the page can show, and the session still waits for its second factor."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith(PROBLEM)
    assert response.json()["detail"]
    assert client.session[PENDING_SESSION_KEY] is True
    assert VERIFIED_SESSION_KEY not in client.session
    assert events("security.passkey_used") == []


# --- registration, then a login with it -----------------------------------------------------------


def test_a_registered_passkey_completes_the_second_factor_and_rotates_the_session(
    holder_admin: User, holder: Organisation
) -> None:
    authenticator = with_passkey(holder_admin)
    client, options = login_options(holder_admin)
    assert options["rpId"] == "testserver"
    assert options["userVerification"] == "preferred"
    assert [c["id"] for c in options["allowCredentials"]] == [authenticator.id]
    session_before = client.session.session_key

    answer = verify(client, authenticator.get(options, origin=ORIGIN), f"/org/{holder.slug}/")
    assert answer.status_code == 200, answer.content
    assert answer.json() == {"redirect": f"/org/{holder.slug}/"}
    assert client.session.session_key != session_before
    assert client.session[VERIFIED_SESSION_KEY] is True
    assert PENDING_SESSION_KEY not in client.session
    assert client.get(f"/org/{holder.slug}/").status_code == 200
    passkey = Passkey.objects.get(user=holder_admin)
    assert passkey.sign_count == 1
    assert passkey.last_used_at is not None
    assert len(events("security.passkey_used")) == 1


def test_registration_keeps_the_public_key_and_its_audit_entry_names_neither_key_nor_challenge(
    holder_admin: User, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = fully_logged_in(holder_admin)
    options = post_json(client, REGISTER_OPTIONS).json()
    assert options["rp"] == {"id": "testserver", "name": "Tiers"}
    assert options["authenticatorSelection"]["userVerification"] == "preferred"
    assert options["attestation"] == "none"
    authenticator = SoftAuthenticator()
    answer = post_json(
        client, REGISTER, {"name": "  work   laptop ", "credential": authenticator.create(options, origin=ORIGIN)}
    )
    assert answer.status_code == 201, answer.content
    assert answer.json() == {"redirect": "/accounts/security/"}

    passkey = Passkey.objects.get(user=holder_admin)
    assert passkey.name == "work laptop"
    assert bytes(passkey.credential_id) == authenticator.credential_id
    assert bytes(passkey.public_key) == authenticator.cose_public_key()
    assert passkey.sign_count == 0
    assert passkey.transports == ["internal", "hybrid"]
    (entry,) = events("security.passkey_registered")
    canonical = bytes(entry.canonical)
    assert json.loads(canonical)["details"] == {"user": holder_admin.pk}
    public_key = authenticator.cose_public_key()
    for secretish in (options["challenge"], b64url(public_key), public_key.hex(), authenticator.id):
        assert secretish.encode() not in canonical
        assert secretish not in caplog.text
    page = client.get("/accounts/security/").content.decode()
    assert "work laptop" in page
    assert "Passkey “work laptop” added." in page


def test_the_second_factor_page_offers_the_passkey_through_a_static_script(holder_admin: User) -> None:
    with_passkey(holder_admin)
    client, _ = password_login(holder_admin.username)
    html = client.get("/accounts/2fa/").content.decode()
    assert '<section id="passkey-login" class="passkey" hidden' in html
    assert '<script src="/static/tiers/passkeys.js" defer></script>' in html
    assert html.count("<script") == 1  # no inline script: the CSP forbids it
    assert 'name="code"' in html  # codes still work without JavaScript


def test_a_person_with_a_passkey_and_no_authenticator_app_is_not_asked_to_enrol_one(holder_admin: User) -> None:
    authenticator = with_passkey(holder_admin)
    TOTPDevice.objects.filter(user=holder_admin).delete()
    client, options = login_options(holder_admin)
    html = client.get("/accounts/2fa/").content.decode()
    assert "totp-secret" not in html
    assert "Give one of your recovery codes." in html
    assert not TOTPDevice.objects.filter(user=holder_admin).exists()
    assert verify(client, authenticator.get(options, origin=ORIGIN)).status_code == 200


def test_a_passkey_that_keeps_no_count_is_accepted_each_time(holder_admin: User) -> None:
    authenticator = SoftAuthenticator(counts=False)
    assert register(fully_logged_in(holder_admin), authenticator).status_code == 201
    for _ in range(2):
        client, options = login_options(holder_admin)
        assert verify(client, authenticator.get(options, origin=ORIGIN)).status_code == 200
    assert Passkey.objects.get(user=holder_admin).sign_count == 0


# --- what is refused at login ---------------------------------------------------------------------


def test_an_answer_to_an_earlier_challenge_is_refused(holder_admin: User, caplog: pytest.LogCaptureFixture) -> None:
    authenticator = with_passkey(holder_admin)
    first, options = login_options(holder_admin)
    answer = authenticator.get(options, origin=ORIGIN)
    assert verify(first, answer).status_code == 200
    replay, _ = login_options(holder_admin)
    response = verify(replay, answer)
    assert response.status_code == 422
    assert "challenge was not expected challenge" in caplog.text
    assert replay.session[PENDING_SESSION_KEY] is True
    assert VERIFIED_SESSION_KEY not in replay.session
    assert len(events("security.passkey_used")) == 1


def test_a_challenge_is_used_once_even_when_its_answer_was_refused(holder_admin: User) -> None:
    authenticator = with_passkey(holder_admin)
    client, options = login_options(holder_admin)
    assert_refused(client, verify(client, authenticator.get(options, origin="http://evil.example")))
    again = verify(client, authenticator.get(options, origin=ORIGIN))
    assert_refused(client, again)
    assert "expired or was already used" in again.json()["detail"]


def test_a_stale_challenge_is_refused(holder_admin: User) -> None:
    authenticator = with_passkey(holder_admin)
    client, options = login_options(holder_admin)
    session = client.session
    session[passkeys.CHALLENGE_SESSION_KEY] = {
        **session[passkeys.CHALLENGE_SESSION_KEY],
        "expires": time.time() - 1,
    }
    session.save()
    assert_refused(client, verify(client, authenticator.get(options, origin=ORIGIN)))


def test_a_registration_challenge_does_not_serve_a_login(holder_admin: User) -> None:
    authenticator = with_passkey(holder_admin)
    client, _ = password_login(holder_admin.username)
    session = client.session
    session[passkeys.CHALLENGE_SESSION_KEY] = {
        "purpose": passkeys.REGISTER,
        "user": holder_admin.pk,
        "challenge": b64url(b"c" * 32),
        "expires": time.time() + 60,
    }
    session.save()
    options = {"challenge": b64url(b"c" * 32), "rpId": "testserver"}
    assert_refused(client, verify(client, authenticator.get(options, origin=ORIGIN)))


@pytest.mark.parametrize("origin", ["http://evil.example", "https://testserver", "http://testserver:8000"])
def test_an_answer_from_another_origin_is_refused(
    holder_admin: User, origin: str, caplog: pytest.LogCaptureFixture
) -> None:
    authenticator = with_passkey(holder_admin)
    client, options = login_options(holder_admin)
    assert_refused(client, verify(client, authenticator.get(options, origin=origin)))
    assert "Unexpected client data origin" in caplog.text


def test_an_answer_for_another_relying_party_is_refused(holder_admin: User, caplog: pytest.LogCaptureFixture) -> None:
    authenticator = with_passkey(holder_admin)
    client, options = login_options(holder_admin)
    assert_refused(client, verify(client, authenticator.get(options, origin=ORIGIN, rp_id="evil.example")))
    assert "Unexpected RP ID hash" in caplog.text


def test_a_signature_by_another_key_is_refused(holder_admin: User, caplog: pytest.LogCaptureFixture) -> None:
    authenticator = with_passkey(holder_admin)
    client, options = login_options(holder_admin)
    forged = authenticator.get(options, origin=ORIGIN, signer=ec.generate_private_key(ec.SECP256R1()))
    assert_refused(client, verify(client, forged))
    assert "Could not verify authentication signature" in caplog.text
    assert Passkey.objects.get(user=holder_admin).sign_count == 0


def test_another_person_s_passkey_is_refused(
    holder_admin: User, user_admin: User, caplog: pytest.LogCaptureFixture
) -> None:
    theirs = with_passkey(holder_admin)
    with_passkey(user_admin)
    client, options = login_options(user_admin)
    response = verify(client, theirs.get(options, origin=ORIGIN))
    assert_refused(client, response)
    assert "unknown credential" in caplog.text
    assert Passkey.objects.get(user=holder_admin).last_used_at is None


def test_an_unknown_credential_is_refused(holder_admin: User) -> None:
    with_passkey(holder_admin)
    client, options = login_options(holder_admin)
    assert_refused(client, verify(client, SoftAuthenticator().get(options, origin=ORIGIN)))


@pytest.mark.parametrize("count", [3, 5])
def test_a_sign_count_that_does_not_grow_is_refused(
    holder_admin: User, count: int, caplog: pytest.LogCaptureFixture
) -> None:
    authenticator = with_passkey(holder_admin)
    client, options = login_options(holder_admin)
    assert verify(client, authenticator.get(options, origin=ORIGIN, sign_count=5)).status_code == 200
    cloned, options = login_options(holder_admin)
    response = verify(cloned, authenticator.get(options, origin=ORIGIN, sign_count=count))
    assert response.status_code == 422
    assert f"sign count of {count} was not greater than current count of 5" in caplog.text
    assert cloned.session[PENDING_SESSION_KEY] is True
    assert VERIFIED_SESSION_KEY not in cloned.session
    assert Passkey.objects.get(user=holder_admin).sign_count == 5


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"credential": "x"}',
        b'{"credential": {"id": "AA", "rawId": "AA", "type": "public-key", "response": {}}}',
        b'{"credential": {"id": "!!", "rawId": "!!", "type": "public-key", "response": {"clientDataJSON": "!",'
        b' "authenticatorData": "!", "signature": "!", "userHandle": "%%%"}}}',
        b"{}",
    ],
)
def test_a_malformed_answer_is_refused_and_changes_nothing(holder_admin: User, body: bytes) -> None:
    with_passkey(holder_admin)
    client, _ = login_options(holder_admin)
    response = client.post(LOGIN_VERIFY, data=body, content_type="application/json")
    assert_refused(client, response)
    assert Passkey.objects.get(user=holder_admin).sign_count == 0


def test_the_passkey_step_needs_a_session_past_the_password(alice: User, holder_admin: User) -> None:
    anonymous = Client()
    assert post_json(anonymous, LOGIN_OPTIONS).status_code == 403
    citizen = Client()
    citizen.force_login(alice)
    for path in (LOGIN_OPTIONS, LOGIN_VERIFY):
        response = post_json(citizen, path)
        assert response.status_code == 403
        assert response["Content-Type"].startswith(PROBLEM)
    assert "_auth_user_id" in citizen.session
    assert VERIFIED_SESSION_KEY not in citizen.session


def test_a_person_without_passkeys_gets_no_options(holder_admin: User) -> None:
    enrol(holder_admin)
    client, _ = password_login(holder_admin.username)
    response = post_json(client, LOGIN_OPTIONS)
    assert response.status_code == 404
    assert passkeys.CHALLENGE_SESSION_KEY not in client.session


def test_the_passkey_step_needs_a_csrf_token(holder_admin: User) -> None:
    authenticator = with_passkey(holder_admin)
    client, options = login_options(holder_admin)
    client.handler.enforce_csrf_checks = True
    response = verify(client, authenticator.get(options, origin=ORIGIN))
    assert response.status_code == 403
    assert VERIFIED_SESSION_KEY not in client.session


def test_passkey_answers_count_against_the_attempt_limit(holder_admin: User) -> None:
    authenticator = with_passkey(holder_admin)
    client, options = login_options(holder_admin)
    assert [give_code(client, "000000").status_code for _ in range(5)] == [400] * 5
    response = verify(client, authenticator.get(options, origin=ORIGIN))
    assert_refused(client, response, status=429)


# --- registration: what is refused ----------------------------------------------------------------


def test_registration_needs_a_session_that_passed_the_second_factor(holder_admin: User, alice: User) -> None:
    enrol(holder_admin)
    pending, _ = password_login(holder_admin.username)
    assert post_json(pending, REGISTER_OPTIONS)["Location"] == "/accounts/2fa/"
    assert post_json(pending, REGISTER, {"name": "x", "credential": {}})["Location"] == "/accounts/2fa/"
    citizen = Client()
    citizen.force_login(alice)
    for path in (REGISTER_OPTIONS, REGISTER):
        response = post_json(citizen, path, {"name": "x", "credential": {}})
        assert response.status_code == 403
        assert response["Content-Type"].startswith(PROBLEM)
    assert not Passkey.objects.exists()


@pytest.mark.parametrize(
    "answer", [{"origin": "http://evil.example"}, {"rp_id": "evil.example"}, {"origin": "https://testserver"}]
)
def test_a_registration_made_for_another_site_is_refused(holder_admin: User, answer: dict[str, str]) -> None:
    response = register(fully_logged_in(holder_admin), SoftAuthenticator(), **answer)
    assert response.status_code == 422
    assert response["Content-Type"].startswith(PROBLEM)
    assert not Passkey.objects.exists()
    assert events("security.passkey_registered") == []


def test_a_registration_answer_to_another_challenge_is_refused(holder_admin: User) -> None:
    client = fully_logged_in(holder_admin)
    stale = post_json(client, REGISTER_OPTIONS).json()
    post_json(client, REGISTER_OPTIONS)  # a second request replaces the first challenge
    credential = SoftAuthenticator().create(stale, origin=ORIGIN)
    assert post_json(client, REGISTER, {"name": "laptop", "credential": credential}).status_code == 422
    assert not Passkey.objects.exists()


def test_a_passkey_is_registered_once(holder_admin: User, user_admin: User) -> None:
    authenticator = with_passkey(holder_admin)
    client = fully_logged_in(holder_admin)
    options = post_json(client, REGISTER_OPTIONS).json()
    assert [c["id"] for c in options["excludeCredentials"]] == [authenticator.id]
    assert register(client, authenticator).status_code == 409
    assert register(fully_logged_in(user_admin), authenticator).status_code == 409  # nor by someone else
    assert Passkey.objects.count() == 1


@pytest.mark.parametrize("name", ["", "   ", "x" * 65, None])
def test_a_passkey_needs_a_short_name(holder_admin: User, name: str | None) -> None:
    response = register(fully_logged_in(holder_admin), SoftAuthenticator(), name)  # type: ignore[arg-type]
    assert response.status_code == 422
    assert "name" in response.json()["detail"]
    assert not Passkey.objects.exists()


def test_a_malformed_registration_is_refused(holder_admin: User) -> None:
    client = fully_logged_in(holder_admin)
    post_json(client, REGISTER_OPTIONS)
    assert client.post(REGISTER, data=b"{", content_type="application/json").status_code == 422
    credential = {"id": "AA", "rawId": "AA", "type": "public-key", "response": {"clientDataJSON": "e30"}}
    assert post_json(client, REGISTER, {"name": "laptop", "credential": credential}).status_code == 422
    assert not Passkey.objects.exists()


# --- removal --------------------------------------------------------------------------------------


def test_a_person_with_an_authenticator_app_may_remove_their_only_passkey(holder_admin: User) -> None:
    with_passkey(holder_admin)
    passkey = Passkey.objects.get(user=holder_admin)
    client = fully_logged_in(holder_admin)
    response = client.post(REMOVE, {"passkey": passkey.pk})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/security/"
    assert not Passkey.objects.exists()
    (entry,) = events("security.passkey_removed")
    assert entry.subject == f"passkey:{passkey.pk}"
    assert "The passkey was removed." in client.get("/accounts/security/").content.decode()


def test_the_last_passkey_of_an_admin_without_an_authenticator_app_stays(holder_admin: User) -> None:
    authenticator = with_passkey(holder_admin, "laptop")
    TOTPDevice.objects.filter(user=holder_admin).delete()
    client, options = login_options(holder_admin)
    assert verify(client, authenticator.get(options, origin=ORIGIN)).status_code == 200
    assert register(client, SoftAuthenticator(), "phone").status_code == 201
    laptop, phone = Passkey.objects.filter(user=holder_admin)

    assert client.post(REMOVE, {"passkey": laptop.pk}).status_code == 302
    refused = client.post(REMOVE, {"passkey": phone.pk})
    assert refused.status_code == 409
    assert "only second factor" in refused.content.decode()
    assert list(Passkey.objects.filter(user=holder_admin)) == [phone]
    assert len(events("security.passkey_removed")) == 1


def test_another_person_s_passkey_cannot_be_removed(holder_admin: User, user_admin: User) -> None:
    with_passkey(holder_admin)
    theirs = Passkey.objects.get(user=holder_admin)
    client = fully_logged_in(user_admin)
    for value in (theirs.pk, "not a number", ""):
        assert client.post(REMOVE, {"passkey": value}).status_code == 404
    assert Passkey.objects.filter(pk=theirs.pk).exists()
    assert events("security.passkey_removed") == []


def test_removal_needs_a_session_that_passed_the_second_factor(holder_admin: User, alice: User) -> None:
    with_passkey(holder_admin)
    passkey = Passkey.objects.get(user=holder_admin)
    pending, _ = password_login(holder_admin.username)
    assert pending.post(REMOVE, {"passkey": passkey.pk})["Location"] == "/accounts/2fa/"
    citizen = Client()
    citizen.force_login(alice)
    assert citizen.post(REMOVE, {"passkey": passkey.pk}).status_code == 403
    assert Client().post(REMOVE, {"passkey": passkey.pk})["Location"].startswith("/accounts/login/")
    assert Passkey.objects.filter(pk=passkey.pk).exists()


# --- the security page ----------------------------------------------------------------------------


def test_the_security_page_lists_passkeys_and_is_linked_from_the_portal(holder_admin: User) -> None:
    with_passkey(holder_admin, "work laptop")
    client = fully_logged_in(holder_admin)
    home = client.get("/").content.decode()
    assert 'href="/accounts/security/"' in home
    page = client.get("/accounts/security/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "work laptop" in html
    assert "never" in html  # not used yet
    assert '<form id="passkey-register" class="stack" hidden' in html
    assert html.count("<script") == 1
    assert "Set up on" in html


def test_the_relying_party_can_be_a_parent_domain(holder_admin: User, settings: Any) -> None:
    settings.WEBAUTHN_RP_ID = "example.org"
    settings.ALLOWED_HOSTS = ["testserver", "tiers.example.org"]
    client = fully_logged_in(holder_admin)
    client.defaults["HTTP_HOST"] = "tiers.example.org"
    options = post_json(client, REGISTER_OPTIONS).json()
    assert options["rp"]["id"] == "example.org"
    credential = SoftAuthenticator().create(options, origin="http://tiers.example.org")
    assert post_json(client, REGISTER, {"name": "laptop", "credential": credential}).status_code == 201
