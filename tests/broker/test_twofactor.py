"""The second factor: operators and organisation admins pass a TOTP code after the password; citizens do not."""

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
from broker.security import totp
from broker.security.models import LoginAttempt, TOTPDevice
from broker.security.twofactor import PENDING_SESSION_KEY, VERIFIED_SESSION_KEY
from tests.broker.oauth.conftest import register_secret_client, token_of
from tests.factories import PASSWORD, MembershipFactory
from tests.twofactor import code_for, enrol, secret_on_page

pytestmark = pytest.mark.django_db
PROBLEM = "application/problem+json"
# A cache on a port where nothing listens: Redis is down.
REDIS_DOWN = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
}


def events(verb: str) -> list[AuditBody]:
    return list(AuditBody.objects.filter(verb=verb))


def password_login(username: str, next_url: str = "") -> tuple[Client, Any]:
    client = Client()
    data = {"username": username, "password": PASSWORD}
    if next_url:
        data["next"] = next_url
    return client, client.post("/accounts/login/", data)


def give_code(client: Client, code: str, next_url: str = "") -> Any:
    return client.post("/accounts/2fa/", {"code": code, "next": next_url})


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
    assert answer.status_code == 302
    assert answer["Location"] == "/operator/"
    assert client.session.session_key != session_before  # a new session once fully logged in
    assert client.session[VERIFIED_SESSION_KEY] is True
    assert PENDING_SESSION_KEY not in client.session
    assert client.get("/operator/").status_code == 200
    assert TOTPDevice.objects.get(user=operator).is_confirmed
    assert len(events("security.totp_enrolled")) == 1


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
