"""The second factor: operators and organisation admins pass a TOTP code (or a recovery code) after the password."""

from __future__ import annotations

import time
from typing import Any

import pyotp
import pytest
from cryptography.exceptions import InvalidTag
from django.test import Client, override_settings
from rest_framework.test import APIClient

from broker import keys
from broker.models import AuditBody, Membership, Organisation, User
from broker.security import recovery, totp
from broker.security.models import LoginAttempt, RecoveryCode, TOTPDevice
from broker.security.twofactor import PENDING_SESSION_KEY, VERIFIED_SESSION_KEY
from tests.broker.oauth.conftest import register_secret_client, token_of
from tests.factories import MembershipFactory
from tests.twofactor import (
    code_for,
    enrol,
    fully_logged_in,
    give_code,
    password_login,
    recovery_codes_on_page,
    secret_on_page,
)

pytestmark = pytest.mark.django_db
PROBLEM = "application/problem+json"
# A cache on a port where nothing listens: Redis is down.
REDIS_DOWN = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
}


def events(verb: str) -> list[AuditBody]:
    return list(AuditBody.objects.filter(verb=verb))


def test_an_operator_is_asked_to_enrol_an_authenticator_after_the_password(operator: User) -> None:
    client, response = password_login(operator.username, "/operator/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/2fa/?next=%2Foperator%2F"
    page = client.get(response["Location"])
    html = page.content.decode()
    assert page.status_code == 200
    assert 'src="data:image/svg+xml' in html
    assert "<script" not in html
    secret = secret_on_page(html)
    assert secret
    assert TOTPDevice.objects.get(user=operator).confirmed_at is None
    uri = totp.provisioning_uri(operator, secret)
    assert uri.startswith("otpauth://totp/Tiers:olga?secret=")
    assert "issuer=Tiers" in uri

    session_before = client.session.session_key
    answer = give_code(client, pyotp.TOTP(secret).now(), "/operator/")
    assert answer.status_code == 200  # the recovery codes, shown this once
    codes = recovery_codes_on_page(answer.content.decode())
    assert len(codes) == 10
    assert len(set(codes)) == 10
    assert 'id="recovery-codes-done" href="/operator/"' in answer.content.decode()
    assert client.session.session_key != session_before  # a new session once fully logged in
    assert client.session[VERIFIED_SESSION_KEY] is True
    assert PENDING_SESSION_KEY not in client.session
    assert client.get("/operator/").status_code == 200
    assert TOTPDevice.objects.get(user=operator).is_confirmed
    assert len(events("security.totp_enrolled")) == 1
    assert len(events("security.recovery_codes_generated")) == 1
    assert recovery.remaining(operator) == 10


def test_an_enrolled_organisation_admin_gives_the_current_code(holder_admin: User, holder: Organisation) -> None:
    secret = enrol(holder_admin)
    client, response = password_login(holder_admin.username)
    page = client.get(response["Location"]).content.decode()
    assert secret_on_page(page) is None
    assert "data:image/svg+xml" not in page
    assert give_code(client, "000000" if pyotp.TOTP(secret).now() != "000000" else "111111").status_code == 400
    assert give_code(client, pyotp.TOTP(secret).now()).status_code == 302
    assert client.get(f"/org/{holder.slug}/").status_code == 200


def test_until_the_code_is_given_every_page_leads_to_the_second_factor(
    holder_admin: User, holder: Organisation
) -> None:
    enrol(holder_admin)
    client, _ = password_login(holder_admin.username)
    for path in (f"/org/{holder.slug}/", "/", "/operator/", "/transparency/", "/admin/"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith("/accounts/2fa/?next="), path
    assert client.post(f"/org/{holder.slug}/clients/", {"name": "x"})["Location"] == "/accounts/2fa/"


def test_until_the_code_is_given_the_api_refuses_the_session(holder_admin: User) -> None:
    enrol(holder_admin)
    client, _ = password_login(holder_admin.username)
    for method, path in (("get", "/api/v1/organisations/me"), ("post", "/api/v1/clients/")):
        response = getattr(client, method)(path)
        assert response.status_code == 403
        assert response["Content-Type"].startswith(PROBLEM)
        assert response.json()["type"].endswith("/problems/second-factor-required")


def test_an_oauth_client_is_unaffected_by_a_half_logged_in_session(
    holder_admin: User, holder: Organisation, api: APIClient
) -> None:
    client, secret = register_secret_client(holder_admin, holder)
    access = token_of(api, client, secret, scope="organisation")["access_token"]
    enrol(holder_admin)
    browser, _ = password_login(holder_admin.username)
    response = browser.get("/api/v1/organisations/me", HTTP_AUTHORIZATION=f"Bearer {access}")
    assert response.status_code == 200
    assert response.json()["slug"] == holder.slug


def test_a_half_logged_in_person_can_log_out(holder_admin: User) -> None:
    enrol(holder_admin)
    client, _ = password_login(holder_admin.username)
    assert client.post("/accounts/logout/").status_code == 302
    assert "_auth_user_id" not in client.session


def test_citizens_and_other_members_log_in_without_a_second_factor(alice: User, holder: Organisation) -> None:
    reviewer = MembershipFactory(user__username="rita", organisation=holder, role=Membership.Role.REVIEWER).user
    for username in (alice.username, reviewer.username):
        _, response = password_login(username)
        assert response.status_code == 302
        assert not response["Location"].startswith("/accounts/2fa/"), username
    assert not totp.requires_second_factor(alice)


def test_each_code_is_accepted_once(holder_admin: User) -> None:
    secret = enrol(holder_admin)
    code = pyotp.TOTP(secret).now()
    assert totp.code_verify(user=holder_admin, code=code)
    assert not totp.code_verify(user=holder_admin, code=code)


@pytest.mark.parametrize(("offset", "accepted"), [(-60, False), (-30, True), (0, True), (30, True), (60, False)])
def test_codes_of_the_neighbouring_steps_only_are_accepted(holder_admin: User, offset: int, accepted: bool) -> None:
    secret = enrol(holder_admin)
    code = pyotp.TOTP(secret).at(time.time() + offset)
    # A code that happens to equal the current one is accepted whatever its step.
    expected = accepted or code == pyotp.TOTP(secret).now()
    assert totp.code_verify(user=holder_admin, code=code) is expected


def test_the_sixth_code_in_a_quarter_hour_is_refused_even_when_right(holder_admin: User) -> None:
    secret = enrol(holder_admin)
    client, _ = password_login(holder_admin.username)
    wrong = "123456" if pyotp.TOTP(secret).now() != "123456" else "654321"
    assert [give_code(client, wrong).status_code for _ in range(5)] == [400] * 5
    refused = give_code(client, pyotp.TOTP(secret).now())
    assert refused.status_code == 429
    assert "Too many codes" in refused.content.decode()


def test_the_code_limit_holds_while_redis_is_down(holder_admin: User) -> None:
    secret = enrol(holder_admin)
    client, _ = password_login(holder_admin.username)
    wrong = "123456" if pyotp.TOTP(secret).now() != "123456" else "654321"
    with override_settings(CACHES=REDIS_DOWN):
        assert [give_code(client, wrong).status_code for _ in range(5)] == [400] * 5
        assert give_code(client, pyotp.TOTP(secret).now()).status_code == 429
    assert LoginAttempt.objects.filter(scope="totp").count() == 6


def test_the_secret_is_sealed_under_the_kek_and_bound_to_its_user(holder_admin: User, user_admin: User) -> None:
    secret = enrol(holder_admin)
    device = TOTPDevice.objects.get(user=holder_admin)
    assert secret.encode() not in bytes(device.sealed_secret)
    assert totp.secret_of(device) == secret
    with pytest.raises(InvalidTag):
        keys.unseal(bytes(device.sealed_secret), aad=f"tiers-totp:{user_admin.pk}".encode())


def test_the_admin_login_goes_through_the_portal_login_and_its_second_factor(operator: User) -> None:
    response = Client().get("/admin/login/?next=/admin/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=%2Fadmin%2F"


def test_the_workspace_accepts_a_session_that_passed_the_second_factor(operator: User, settings: Any) -> None:
    settings.TIERS_OPERATOR_2FA_REQUIRED = True
    secret = enrol(operator)
    client, _ = password_login(operator.username)
    give_code(client, code_for(operator.username, secret))
    assert client.get("/operator/ethics/").status_code == 200


def test_a_next_address_elsewhere_is_not_followed(holder_admin: User) -> None:
    secret = enrol(holder_admin)
    client, _ = password_login(holder_admin.username)
    response = give_code(client, pyotp.TOTP(secret).now(), "https://evil.example/")
    assert response["Location"] == "/"


# --- recovery codes -------------------------------------------------------------------------------


def recovery_codes_for(user: User) -> list[str]:
    """An enrolled authenticator and a fresh set of recovery codes, as the enrolment page gives them."""
    enrol(user)
    return recovery.recovery_codes_generate(actor=user, user=user)


def test_a_recovery_code_lets_the_person_in_once(holder_admin: User, holder: Organisation) -> None:
    codes = recovery_codes_for(holder_admin)
    client, _ = password_login(holder_admin.username)
    session_before = client.session.session_key
    answer = give_code(client, codes[0].upper().replace("-", " "), f"/org/{holder.slug}/")  # as typed from paper
    assert answer.status_code == 302
    assert answer["Location"] == f"/org/{holder.slug}/"
    assert client.session.session_key != session_before
    assert client.session[VERIFIED_SESSION_KEY] is True
    page = client.get(answer["Location"]).content.decode()
    assert "Recovery code accepted. You have 9 recovery codes left." in page
    used = events("security.recovery_code_used")
    assert len(used) == 1
    assert b'"remaining":9' in bytes(used[0].canonical)
    assert codes[0].encode() not in bytes(used[0].canonical)

    again, _ = password_login(holder_admin.username)
    refused = give_code(again, codes[0])
    assert refused.status_code == 400
    assert again.session[PENDING_SESSION_KEY] is True
    assert VERIFIED_SESSION_KEY not in again.session
    assert recovery.remaining(holder_admin) == 9


def test_another_person_s_recovery_code_is_refused(holder_admin: User, user_admin: User) -> None:
    codes = recovery_codes_for(holder_admin)
    recovery_codes_for(user_admin)
    client, _ = password_login(user_admin.username)
    assert give_code(client, codes[0]).status_code == 400
    assert client.session[PENDING_SESSION_KEY] is True
    assert recovery.remaining(holder_admin) == 10
    assert recovery.remaining(user_admin) == 10
    assert events("security.recovery_code_used") == []


def test_the_last_recovery_codes_ask_for_a_new_set(holder_admin: User) -> None:
    codes = recovery_codes_for(holder_admin)
    for code in codes[:8]:
        assert recovery.recovery_code_use(user=holder_admin, code=code) is not None
    client, _ = password_login(holder_admin.username)
    page = client.get(give_code(client, codes[8])["Location"]).content.decode()
    assert "You have 1 recovery code left. Make a new set on your security page." in page


def test_recovery_codes_count_against_the_code_limit(holder_admin: User) -> None:
    codes = recovery_codes_for(holder_admin)
    client, _ = password_login(holder_admin.username)
    assert [give_code(client, "aaaa-bbbb-cccc-dddd").status_code for _ in range(5)] == [400] * 5
    assert give_code(client, codes[0]).status_code == 429
    assert recovery.remaining(holder_admin) == 10


def test_recovery_codes_are_kept_as_digests_only(holder_admin: User) -> None:
    codes = recovery_codes_for(holder_admin)
    digests = list(RecoveryCode.objects.filter(user=holder_admin).values_list("digest", flat=True))
    assert len(digests) == 10
    for code in codes:
        assert all(code not in digest and code.replace("-", "") not in digest for digest in digests)
        assert len(code.replace("-", "")) == 16


def test_two_uses_of_one_code_at_once_let_one_in(holder_admin: User) -> None:
    codes = recovery_codes_for(holder_admin)
    assert recovery.recovery_code_use(user=holder_admin, code=codes[0]) == 9
    assert recovery.recovery_code_use(user=holder_admin, code=codes[0]) is None


def test_a_new_set_from_the_security_page_replaces_the_old_one(holder_admin: User) -> None:
    old = recovery_codes_for(holder_admin)
    client = fully_logged_in(holder_admin)
    page = client.get("/accounts/security/").content.decode()
    assert "You have 10 unused recovery codes." in page
    answer = client.post("/accounts/security/recovery-codes")
    assert answer.status_code == 200
    assert answer["Cache-Control"].startswith("max-age=0")
    new = recovery_codes_on_page(answer.content.decode())
    assert len(new) == 10
    assert not set(new) & set(old)
    assert len(events("security.recovery_codes_generated")) == 2
    assert recovery.recovery_code_use(user=holder_admin, code=old[0]) is None
    assert recovery.recovery_code_use(user=holder_admin, code=new[0]) == 9


def test_a_half_logged_in_session_cannot_make_new_recovery_codes(holder_admin: User) -> None:
    old = recovery_codes_for(holder_admin)
    client, _ = password_login(holder_admin.username)
    answer = client.post("/accounts/security/recovery-codes")
    assert answer.status_code == 302
    assert answer["Location"] == "/accounts/2fa/"
    assert recovery.recovery_code_use(user=holder_admin, code=old[0]) == 9
    assert len(events("security.recovery_codes_generated")) == 1


def test_the_security_page_is_for_sessions_that_passed_the_second_factor(alice: User) -> None:
    anonymous = Client().get("/accounts/security/")
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/accounts/login/?next=")
    citizen = Client()
    citizen.force_login(alice)
    assert citizen.get("/accounts/security/").status_code == 403
    assert citizen.post("/accounts/security/recovery-codes").status_code == 403
    assert not RecoveryCode.objects.filter(user=alice).exists()
    assert "/accounts/security/" not in citizen.get("/").content.decode()
