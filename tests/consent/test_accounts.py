"""Citizens' accounts: sign-up with e-mail verification, password reset, throttled login."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client

from broker.models import AuditBody, User
from tests.factories import PASSWORD

SIGNUP = {
    "username": "dora",
    "email": "dora@example.org",
    "display_name": "Dora",
    "password": "a long and unusual passphrase",
    "password_again": "a long and unusual passphrase",
}


def link_in(message: str) -> str:
    found = re.search(r"http://testserver(/\S+)", message)
    assert found is not None, message
    return found.group(1)


@pytest.mark.django_db
def test_a_citizen_signs_up_confirms_the_address_and_logs_in() -> None:
    client = Client()
    response = client.post("/accounts/signup/", SIGNUP)
    assert response.status_code == 200
    assert "dora@example.org" in response.content.decode()
    user = User.objects.get(username="dora")
    assert not user.is_active
    assert user.citizen_profile.display_name == "Dora"
    assert not client.login(username="dora", password=SIGNUP["password"])
    (message,) = mail.outbox
    assert message.to == ["dora@example.org"]
    assert client.get(link_in(message.body)).status_code == 302
    user.refresh_from_db()
    assert user.is_active
    assert client.login(username="dora", password=SIGNUP["password"])
    assert client.get("/me/").status_code == 200
    assert AuditBody.objects.filter(verb="citizen.email_verified", citizen_id=user.pk).count() == 1


@pytest.mark.django_db
def test_a_forged_verification_link_opens_nothing() -> None:
    Client().post("/accounts/signup/", SIGNUP)
    user = User.objects.get(username="dora")
    response = Client().get(f"/accounts/verify/{user.pk}/not-a-token/")
    assert response.status_code == 400
    user.refresh_from_db()
    assert not user.is_active


@pytest.mark.django_db
def test_signing_up_again_unverified_sends_a_fresh_link_and_makes_no_second_account() -> None:
    Client().post("/accounts/signup/", SIGNUP)
    Client().post("/accounts/signup/", SIGNUP)
    assert User.objects.filter(username="dora").count() == 1
    assert len(mail.outbox) == 2


def test_a_taken_username_is_refused_with_a_helpful_message(alice) -> None:  # type: ignore[no-untyped-def]
    response = Client().post("/accounts/signup/", {**SIGNUP, "username": "alice"})
    assert "This username is taken." in response.content.decode()
    assert not mail.outbox


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"password_again": "something else"}, "The two passwords differ."),
        ({"password": "123", "password_again": "123"}, "too short"),
    ],
)
def test_weak_or_mismatched_passwords_are_refused(change: dict, message: str) -> None:  # type: ignore[type-arg]
    response = Client().post("/accounts/signup/", {**SIGNUP, **change})
    assert message in response.content.decode()
    assert not User.objects.exists()


def test_a_citizen_resets_a_forgotten_password(alice) -> None:  # type: ignore[no-untyped-def]
    client = Client()
    client.post("/accounts/password_reset/", {"email": alice.email})
    (message,) = mail.outbox
    confirm = client.get(link_in(message.body), follow=True)
    assert confirm.status_code == 200
    new = "another long passphrase indeed"
    client.post(confirm.redirect_chain[-1][0], {"new_password1": new, "new_password2": new})
    assert Client().login(username="alice", password=new)


def test_login_is_throttled_per_username(alice) -> None:  # type: ignore[no-untyped-def]
    client = Client()
    for _ in range(10):
        assert client.post("/accounts/login/", {"username": "alice", "password": "wrong"}).status_code == 200
    refused = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert refused.status_code == 429
    assert "Too many attempts" in refused.content.decode()
    assert "_auth_user_id" not in client.session


def test_an_account_staff_disabled_cannot_be_reopened_through_sign_up(alice) -> None:  # type: ignore[no-untyped-def]
    alice.is_active = False
    alice.save()
    Client().post("/accounts/signup/", {**SIGNUP, "username": "alice", "email": alice.email})
    assert not mail.outbox
    from consent import services

    services.citizen_verify_email(citizen=alice)
    alice.refresh_from_db()
    assert not alice.is_active


@pytest.mark.django_db
def test_a_verification_link_is_not_a_password_reset_link() -> None:
    Client().post("/accounts/signup/", SIGNUP)
    (message,) = mail.outbox
    uid, token = link_in(message.body).rstrip("/").split("/")[-2:]
    response = Client().get(f"/accounts/reset/{uid}/{token}/", follow=True)
    assert "This link does not work" in response.content.decode()


@pytest.mark.django_db
def test_usernames_shaped_like_openid_connect_accounts_are_reserved() -> None:
    response = Client().post("/accounts/signup/", {**SIGNUP, "username": "keycloak-0123456789abcdef01234567"})
    assert "This username is reserved" in response.content.decode()
    assert not User.objects.exists()
