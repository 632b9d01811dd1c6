"""Login with OpenID Connect, against a real provider the tests start on 127.0.0.1 (tests/consent/oidc_provider.py).

The Django test client plays the browser on Tiers' side; `requests` plays it on the provider's side.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from django.contrib import auth
from django.http import HttpResponse
from django.test import Client
from django.urls import reverse

from broker.models import AuditBody, User
from consent import services
from consent.models import OidcIdentity
from tests.broker.test_settings import PRODUCTION, manage
from tests.consent.oidc_provider import OidcTestProvider
from tests.factories import CitizenFactory

NAME = "testop"


@pytest.fixture(scope="module")
def provider_server() -> Iterator[OidcTestProvider]:
    provider = OidcTestProvider()
    provider.start()
    yield provider
    provider.stop()


@pytest.fixture
def provider(provider_server: OidcTestProvider, settings: Any, db: None) -> OidcTestProvider:
    """The test provider, well-behaved, configured in Tiers as "testop"."""
    provider_server.reset()
    settings.TIERS_BASE_URL = "http://testserver"
    settings.TIERS_OIDC_PROVIDERS = [provider_server.settings_entry(NAME)]
    return provider_server


def start_login(client: Client, name: str = NAME, **form: str) -> HttpResponse:
    return client.post(reverse("oidc-login", args=[name]), form)


def at_provider(authorize_url: str) -> str:
    """The browser at the provider's authorize endpoint, which approves at once: the callback address."""
    answer = requests.get(authorize_url, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    return answer.headers["Location"]


def log_in(client: Client, **form: str) -> HttpResponse:
    """The whole round trip: Tiers → provider → Tiers' callback."""
    response = start_login(client, **form)
    assert response.status_code == 302
    return client.get(at_provider(response["Location"]))


def logged_in_user(client: Client) -> User | None:
    user = auth.get_user(client)  # type: ignore[arg-type]
    return user if isinstance(user, User) else None


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {key: values[0] for key, values in parse_qs(parts.query).items()} | changes
    return parts._replace(query=urlencode(query)).geturl()


def refused(client: Client, response: HttpResponse) -> str:
    """Assert the answer is the login page again, nobody logged in; return the page with its message."""
    assert response.status_code == 302
    assert response["Location"] == reverse("login")
    assert logged_in_user(client) is None
    return client.get(response["Location"]).content.decode()


def oidc_linked_entries(user: User) -> int:
    return AuditBody.objects.filter(verb="citizen.oidc_linked", citizen_id=user.pk).count()


def test_first_login_opens_a_citizen_account_and_logs_it_in(provider: OidcTestProvider) -> None:
    client = Client()

    response = log_in(client)

    assert response.status_code == 302
    assert response["Location"] == reverse("portal-home")
    user = logged_in_user(client)
    assert user is not None
    identity = OidcIdentity.objects.get(provider=NAME, subject=provider.user["sub"])
    assert identity.user == user
    assert user.citizen_profile.display_name == "Camille Martin"
    assert user.email == "camille@example.org"
    assert not user.has_usable_password()
    assert provider.user["sub"] not in user.username
    assert oidc_linked_entries(user) == 1
    assert AuditBody.objects.filter(verb="citizen.registered", citizen_id=user.pk).count() == 1


def test_tiers_asks_with_pkce_state_and_nonce_for_its_own_callback(provider: OidcTestProvider) -> None:
    log_in(Client())

    request = provider.authorize_requests[-1]
    assert request["code_challenge_method"] == "S256"
    assert len(request["code_challenge"]) == 43
    assert request["state"]
    assert request["nonce"]
    assert request["scope"] == "openid email profile"
    assert request["redirect_uri"] == f"http://testserver/accounts/oidc/{NAME}/callback"


def test_a_second_login_reuses_the_same_account(provider: OidcTestProvider) -> None:
    first, second = Client(), Client()

    log_in(first)
    log_in(second)

    assert logged_in_user(first) == logged_in_user(second) is not None
    assert OidcIdentity.objects.count() == 1
    assert User.objects.count() == 1
    user = logged_in_user(second)
    assert user is not None
    assert oidc_linked_entries(user) == 1


def test_an_email_the_provider_has_not_verified_is_not_kept(provider: OidcTestProvider) -> None:
    provider.user["email_verified"] = False
    client = Client()

    log_in(client)

    user = logged_in_user(client)
    assert user is not None
    assert user.email == ""


def test_a_tampered_state_is_refused(provider: OidcTestProvider) -> None:
    client = Client()
    callback = at_provider(start_login(client)["Location"])

    page = refused(client, client.get(with_query(callback, state="forged-state")))

    assert "Please start again" in page
    assert not User.objects.exists()


def test_a_callback_opened_in_another_browser_is_refused(provider: OidcTestProvider) -> None:
    """Login CSRF: a victim given an attacker's callback address must not be logged in as the attacker."""
    callback = at_provider(start_login(Client())["Location"])
    victim = Client()

    refused(victim, victim.get(callback))

    assert not User.objects.exists()


def test_a_callback_works_once(provider: OidcTestProvider) -> None:
    client = Client()
    callback = at_provider(start_login(client)["Location"])
    client.get(callback)
    client.logout()

    refused(client, client.get(callback))


@pytest.mark.parametrize(
    "misbehaviour",
    [
        "wrong_nonce",
        "no_nonce",
        "foreign_key",
        "unknown_key",
        "wrong_audience",
        "wrong_issuer",
        "expired",
        "no_id_token",
    ],
)
def test_an_id_token_that_does_not_verify_is_refused(provider: OidcTestProvider, misbehaviour: str) -> None:
    provider.misbehaviour = misbehaviour
    client = Client()

    page = refused(client, log_in(client))

    assert "The answer from Test provider could not be verified" in page
    assert not OidcIdentity.objects.exists()
    assert not User.objects.exists()


def test_a_refusal_at_the_provider_is_explained_without_repeating_its_text(provider: OidcTestProvider) -> None:
    provider.misbehaviour = "deny"
    client = Client()

    page = refused(client, log_in(client))

    assert "The login at Test provider was cancelled or refused" in page
    assert "Call +00" not in page


def test_an_unreachable_provider_is_explained(provider: OidcTestProvider, settings: Any) -> None:
    entry = provider.settings_entry(NAME)
    settings.TIERS_OIDC_PROVIDERS = [
        {**entry, "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration"}
    ]
    client = Client()

    page = refused(client, start_login(client))

    assert "Test provider cannot be reached" in page


def test_a_provider_whose_issuer_is_not_its_address_is_refused(provider: OidcTestProvider, settings: Any) -> None:
    entry = provider.settings_entry(NAME)
    url = entry["server_metadata_url"].replace("127.0.0.1", "localhost")
    settings.TIERS_OIDC_PROVIDERS = [{**entry, "server_metadata_url": url}]
    client = Client()

    page = refused(client, start_login(client))

    assert "not configured correctly" in page


def test_an_unknown_provider_answers_404(provider: OidcTestProvider) -> None:
    client = Client()

    assert start_login(client, name="nobody").status_code == 404
    assert client.get(reverse("oidc-callback", args=["nobody"]), {"code": "x", "state": "y"}).status_code == 404


def test_login_starts_only_with_a_post(provider: OidcTestProvider) -> None:
    """A link or an image elsewhere cannot start a login on the visitor's behalf."""
    assert Client().get(reverse("oidc-login", args=[NAME])).status_code == 405


def test_a_safe_next_address_is_followed_and_another_site_is_not(provider: OidcTestProvider) -> None:
    assert log_in(Client(), next="/me/")["Location"] == "/me/"
    assert log_in(Client(), next="https://evil.example/")["Location"] == reverse("portal-home")


ERASURE = "/me/account/delete"


def log_in_again(client: Client) -> HttpResponse:
    """The "Log in again with ..." button of the erasure page, then the round trip."""
    return log_in(client, next=ERASURE, relogin="1")


def erasable(client: Client) -> bool:
    """The erasure page offers the confirmation form, not a login again."""
    return 'name="confirm"' in client.get(ERASURE).content.decode()


def test_an_account_opened_at_the_provider_confirms_its_erasure_by_logging_in_there_again(
    provider: OidcTestProvider,
) -> None:
    client = Client()
    log_in(client)
    user = logged_in_user(client)
    assert user is not None
    page = client.get(ERASURE).content.decode()
    assert f'action="{reverse("oidc-login", args=[NAME])}"' in page
    assert f'name="next" value="{ERASURE}"' in page
    assert 'name="relogin" value="1"' in page

    assert log_in_again(client)["Location"] == ERASURE
    page = client.get(ERASURE).content.decode()
    assert 'name="confirm"' in page
    assert 'type="password"' not in page
    assert client.post(ERASURE, {"confirm": "on"})["Location"] == "/accounts/goodbye/"
    assert not User.objects.filter(pk=user.pk).exists()
    assert not OidcIdentity.objects.exists()


def test_an_ordinary_login_does_not_confirm_an_erasure(provider: OidcTestProvider) -> None:
    """A session left open at the provider answers an ordinary login silently: that proves nothing."""
    client = Client()

    log_in(client)
    log_in(client, next=ERASURE)

    assert "tiers_provider_login_at" not in client.session
    assert not erasable(client)
    client.post(ERASURE, {"confirm": "on"})
    assert User.objects.count() == 1
    assert "prompt" not in provider.authorize_requests[-1]
    assert "max_age" not in provider.authorize_requests[-1]


def test_a_login_again_asks_the_provider_to_authenticate_anew_and_keeps_its_auth_time(
    provider: OidcTestProvider,
) -> None:
    client = Client()
    log_in(client)
    before = time.time()

    log_in_again(client)

    request = provider.authorize_requests[-1]
    assert request["prompt"] == "login"
    assert request["max_age"] == "0"
    assert request["nonce"]
    assert provider.logged_in_at >= int(before)
    assert client.session["tiers_provider_login_at"] == provider.logged_in_at
    assert erasable(client)


@pytest.mark.parametrize(
    ("misbehaviour", "session_age"),
    [
        ("no_auth_time", 0),
        ("ignores_prompt", 3600),  # auth_time an hour old
        ("ignores_prompt", 120),  # recent, but before the login again was asked for
    ],
)
def test_a_login_again_without_a_fresh_auth_time_does_not_confirm_an_erasure(
    provider: OidcTestProvider, misbehaviour: str, session_age: int
) -> None:
    client = Client()
    log_in(client)
    provider.misbehaviour = misbehaviour
    provider.logged_in_at = int(time.time()) - session_age

    response = log_in_again(client)

    assert response["Location"] == reverse("citizen-erasure")
    assert logged_in_user(client) is not None  # the session that asked goes on, unchanged
    page = client.get(ERASURE).content.decode()
    assert "Test provider did not confirm that you logged in again just now. Nothing was deleted" in page
    assert "tiers_provider_login_at" not in client.session
    assert not erasable(client)
    client.post(ERASURE, {"confirm": "on"})
    assert User.objects.count() == 1


def test_a_disabled_account_is_not_logged_in(provider: OidcTestProvider) -> None:
    log_in(Client())
    User.objects.update(is_active=False)
    client = Client()

    page = refused(client, log_in(client))

    assert "This account is disabled" in page


def test_a_username_already_taken_is_refused_without_touching_that_account(provider: OidcTestProvider) -> None:
    squatter = CitizenFactory(username=services._username(NAME, provider.user["sub"]))
    client = Client()

    page = refused(client, log_in(client))

    assert "Tiers could not open your account" in page
    assert not OidcIdentity.objects.exists()
    assert not squatter.oidc_identities.exists()


def test_the_login_page_lists_a_button_per_provider(provider: OidcTestProvider, settings: Any) -> None:
    settings.TIERS_OIDC_PROVIDERS = [
        provider.settings_entry(NAME),
        provider.settings_entry("franceconnect", label="FranceConnect"),
    ]

    page = Client().get(reverse("login")).content.decode()

    assert "Log in with Test provider" in page
    assert "Log in with FranceConnect" in page
    assert reverse("oidc-login", args=["franceconnect"]) in page


def test_the_login_page_has_no_provider_section_without_providers(settings: Any, db: None) -> None:
    settings.TIERS_OIDC_PROVIDERS = []

    page = Client().get(reverse("login")).content.decode()

    assert "identity provider" not in page


@pytest.mark.parametrize(
    ("providers", "complaint"),
    [
        ("[{not json", "TIERS_OIDC_PROVIDERS is not valid JSON"),
        ('[{"name": "kc", "label": "Keycloak"}]', "a provider lacks server_metadata_url, client_id"),
        (
            '[{"name": "kc", "label": "K", "client_id": "t", "scope": "email",'
            ' "server_metadata_url": "https://sso.example.eu/.well-known/openid-configuration"}]',
            "the scope of 'kc' must include openid",
        ),
        (
            '[{"name": "kc", "label": "K", "client_id": "t",'
            ' "server_metadata_url": "http://sso.example.eu/.well-known/openid-configuration"}]',
            "the server_metadata_url of 'kc' must be https",
        ),
    ],
)
def test_a_misconfigured_provider_stops_start_up(providers: str, complaint: str) -> None:
    result = manage("check", **PRODUCTION, TIERS_OIDC_PROVIDERS=providers)

    assert result.returncode != 0
    assert complaint in result.stderr
