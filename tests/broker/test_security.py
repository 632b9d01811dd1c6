"""Hardening: security headers and CSP, cookies and HTTPS, API and login limits, body size, Idempotency-Key."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test import Client, override_settings
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle

from broker.models import Organisation, User
from broker.oauth.models import OAuthClient
from broker.security import headers, idempotency
from broker.security.models import IdempotentResponse, LoginAttempt
from consent.models import LinkCode
from tests.broker.oauth.conftest import basic, register_secret_client, token_of
from tests.conftest import StillClock
from tests.factories import PASSWORD

PROBLEM = "application/problem+json"
ROOT = Path(__file__).resolve().parents[2]
STRICT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'"
)
REDIS_DOWN = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
}


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


def settings_in_a_fresh_process(**environment: str) -> dict[str, Any]:
    """broker.settings as a new process with this environment reads them (no .env file, no test overrides)."""
    code = (
        "import json, broker.settings as s; print(json.dumps({k: getattr(s, k, None) for k in ("
        "'SECURE_HSTS_SECONDS', 'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', 'SECURE_SSL_REDIRECT', "
        "'SESSION_COOKIE_HTTPONLY', 'CSRF_COOKIE_HTTPONLY', 'SESSION_COOKIE_SAMESITE', 'CSRF_COOKIE_SAMESITE', "
        "'OAUTH_TOKEN_RATE_PER_CLIENT', 'REST_FRAMEWORK')}, default=str))"
    )
    keep = {name: os.environ[name] for name in ("PATH", "HOME") if name in os.environ}
    env = {**keep, "TIERS_ENV_FILE": "", "DEBUG": "true", **environment}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True, timeout=60
    )
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


# --- headers ---------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path", ["/", "/accounts/login/", "/api/v1/organisations/", "/static/tiers/tiers.css", "/nope"]
)
def test_every_response_carries_the_security_headers(path: str) -> None:
    response = Client().get(path)
    assert response["Content-Security-Policy"] == STRICT_CSP
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] in ("same-origin", "strict-origin-when-cross-origin")
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


def test_no_template_has_inline_script_or_event_handler_attributes() -> None:
    offenders = []
    for template in ROOT.glob("*/templates/**/*.html"):
        text = template.read_text(encoding="utf-8")
        for marker in ("<script>", '<script type="text/javascript">', " onclick=", " onload=", " onsubmit=", " style="):
            if marker in text:
                offenders.append(f"{template.relative_to(ROOT)}: {marker.strip()}")
        if "<script" in text and "src=" not in text.split("<script", 1)[1].split(">", 1)[0]:
            offenders.append(f"{template.relative_to(ROOT)}: inline <script>")
    assert offenders == []


@pytest.mark.django_db
def test_the_api_docs_page_allows_its_own_inline_style_block_by_hash_and_nothing_else() -> None:
    response = Client().get("/api/docs/")
    html = response.content.decode()
    assert response.status_code == 200
    csp = response["Content-Security-Policy"]
    assert f"style-src 'self' {headers.style_hash('drf_spectacular/swagger_ui.html')}" in csp
    assert "unsafe-inline" not in csp
    assert "script-src 'self';" in csp
    assert "<script>" not in html  # the init script is a separate file (?script)
    script = Client().get("/api/docs/?script=")
    assert script.status_code == 200
    assert "SwaggerUIBundle" in script.content.decode()


@pytest.mark.django_db(transaction=True)
def test_swagger_ui_renders_under_its_csp_in_a_browser(live_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from playwright.sync_api import sync_playwright

    from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS

    if not CHROMIUM.exists():
        pytest.fail(f"this test needs {CHROMIUM}: run `make browser-deps`", pytrace=False)
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    violations: list[str] = []
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=30_000)
        try:
            page = browser.new_page()
            page.on(
                "console",
                lambda message: violations.append(message.text) if "Content Security" in message.text else None,
            )
            page.goto(f"{live_server.url}/api/docs/")
            page.locator(".swagger-ui .info .title").wait_for(timeout=15_000)
            title = page.locator(".swagger-ui .info .title").inner_text()
            background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        finally:
            browser.close()
    assert "Tiers API" in title
    assert background == "rgb(250, 250, 250)"  # the page's own inline <style> applied
    assert violations == []


# --- cookies and HTTPS -----------------------------------------------------------------------


@pytest.mark.django_db
def test_session_cookie_is_httponly_and_lax_and_the_csrf_cookie_stays_readable(alice: User) -> None:
    client = Client()
    client.get("/accounts/login/")
    response = client.post("/accounts/login/", {"username": alice.username, "password": PASSWORD})
    session, csrf = response.cookies["sessionid"], response.cookies["csrftoken"]
    assert session["httponly"]
    assert session["samesite"] == "Lax"
    assert not csrf["httponly"]
    assert csrf["samesite"] == "Lax"
    assert not session["secure"]  # the demo and the tests are served on plain http://


def test_over_https_hsts_and_secure_cookies_are_on_and_on_plain_http_they_are_off() -> None:
    https = settings_in_a_fresh_process(TIERS_BASE_URL="https://tiers.example.eu", ALLOWED_HOSTS="tiers.example.eu")
    assert https["SECURE_HSTS_SECONDS"] == 31536000
    assert https["SESSION_COOKIE_SECURE"] is True
    assert https["CSRF_COOKIE_SECURE"] is True
    assert https["SECURE_SSL_REDIRECT"] is True
    demo = settings_in_a_fresh_process(TIERS_BASE_URL="http://127.0.0.1:8000")
    assert not demo["SECURE_HSTS_SECONDS"]
    assert not demo["SESSION_COOKIE_SECURE"]
    assert not demo["SECURE_SSL_REDIRECT"]
    for read in (https, demo):
        assert read["SESSION_COOKIE_HTTPONLY"] is True
        assert read["CSRF_COOKIE_HTTPONLY"] is False
        assert read["SESSION_COOKIE_SAMESITE"] == "Lax" == read["CSRF_COOKIE_SAMESITE"]


@pytest.mark.django_db
@override_settings(SECURE_HSTS_SECONDS=31536000, SECURE_HSTS_INCLUDE_SUBDOMAINS=True)
def test_an_https_response_carries_hsts() -> None:
    response = Client().get("/", secure=True)
    assert response["Strict-Transport-Security"].startswith("max-age=31536000")


# --- rate limits -----------------------------------------------------------------------------


def test_the_demo_defaults_leave_room_for_tokens_and_anonymous_reads() -> None:
    demo = settings_in_a_fresh_process()
    rates = demo["REST_FRAMEWORK"]["DEFAULT_THROTTLE_RATES"]
    per_minute = {
        scope: n * 60 / seconds
        for scope, (n, seconds) in ((scope, AnonRateThrottle().parse_rate(rate)) for scope, rate in rates.items())
    }
    assert per_minute["anon"] >= 1000
    assert per_minute["user"] >= 1000
    assert demo["OAUTH_TOKEN_RATE_PER_CLIENT"] >= 60


@pytest.fixture
def demo_rates() -> Any:
    """The API throttles with the demo's default rates (the suite otherwise lifts the anonymous one)."""
    original_anon, original_user = AnonRateThrottle.THROTTLE_RATES, UserRateThrottle.THROTTLE_RATES
    AnonRateThrottle.THROTTLE_RATES = {**original_anon, "anon": "1000/min"}
    yield
    AnonRateThrottle.THROTTLE_RATES, UserRateThrottle.THROTTLE_RATES = original_anon, original_user


@pytest.mark.django_db
def test_an_address_reads_a_thousand_times_a_minute_and_the_next_read_is_a_429(demo_rates: None) -> None:
    client = APIClient()
    statuses = {client.get("/api/v1/organisations/").status_code for _ in range(1000)}
    assert statuses == {200}
    refused = client.get("/api/v1/organisations/")
    assert_problem(refused, 429)
    assert int(refused["Retry-After"]) > 0


@pytest.mark.django_db
def test_each_client_has_its_own_api_limit(holder_admin: User, holder: Organisation, api: APIClient) -> None:
    first, first_secret = register_secret_client(holder_admin, holder, name="first")
    second, second_secret = register_secret_client(holder_admin, holder, name="second")
    tokens = [
        token_of(api, c, s, scope="organisation")["access_token"]
        for c, s in ((first, first_secret), (second, second_secret))
    ]
    original = UserRateThrottle.THROTTLE_RATES
    UserRateThrottle.THROTTLE_RATES = {**original, "user": "3/min"}
    try:
        calls = [api.get("/api/v1/organisations/me", HTTP_AUTHORIZATION=f"Bearer {tokens[0]}") for _ in range(4)]
        other = api.get("/api/v1/organisations/me", HTTP_AUTHORIZATION=f"Bearer {tokens[1]}")
    finally:
        UserRateThrottle.THROTTLE_RATES = original
    assert [call.status_code for call in calls[:3]] == [200, 200, 200]
    assert_problem(calls[3], 429)
    assert "Retry-After" in calls[3]
    assert other.status_code == 200


@pytest.mark.django_db
def test_a_client_gets_sixty_tokens_a_minute_and_a_burst_over_its_limit_is_slowed_down(
    holder_admin: User, holder: Organisation, settings: Any, still_clock: StillClock
) -> None:
    client, secret = register_secret_client(holder_admin, holder)
    api = APIClient()
    limit = settings.OAUTH_TOKEN_RATE_PER_CLIENT
    assert limit >= 60
    form = {"grant_type": "client_credentials", "scope": "organisation"}
    auth = basic(client.client_id, secret)
    statuses = [api.post("/oauth/token", form, HTTP_AUTHORIZATION=auth).status_code for _ in range(limit)]
    assert statuses == [200] * limit
    refused = api.post("/oauth/token", form, HTTP_AUTHORIZATION=auth)
    assert refused.status_code == 429
    assert refused.json()["error"] == "slow_down"  # RFC 6749's error format, as OAuth clients expect
    assert int(refused["Retry-After"]) > 0
    still_clock.now += 60
    assert api.post("/oauth/token", form, HTTP_AUTHORIZATION=auth).status_code == 200  # a new minute, a new allowance


# --- login throttle without Redis ------------------------------------------------------------


@pytest.mark.django_db
def test_the_login_limit_holds_while_redis_is_down(alice: User) -> None:
    client = Client()
    with override_settings(CACHES=REDIS_DOWN):
        bad = [
            client.post("/accounts/login/", {"username": "alice", "password": "wrong"}).status_code for _ in range(10)
        ]
        eleventh = client.post("/accounts/login/", {"username": "alice", "password": "wrong"})
        even_right = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert bad == [200] * 10
    assert eleventh.status_code == 429
    assert even_right.status_code == 429
    assert "_auth_user_id" not in client.session
    digests = set(LoginAttempt.objects.filter(scope="login-user").values_list("key_digest", flat=True))
    assert len(digests) == 1
    assert "alice" not in next(iter(digests))


@pytest.mark.django_db
def test_old_login_attempts_are_pruned(alice: User) -> None:
    LoginAttempt.objects.create(
        scope="login-user", key_digest="0" * 64, attempted_at=timezone.now() - datetime.timedelta(days=2)
    )
    with override_settings(CACHES=REDIS_DOWN):
        Client().post("/accounts/login/", {"username": "alice", "password": "wrong"})
    assert not LoginAttempt.objects.filter(key_digest="0" * 64).exists()


# --- request size ----------------------------------------------------------------------------


@pytest.mark.django_db
@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000)
def test_a_json_body_over_the_limit_is_a_problem_413(holder_admin: User) -> None:
    client = APIClient()
    client.force_login(holder_admin)
    response = client.post("/api/v1/link-codes/", {"subject_ref": "x" * 2000}, format="json")
    body = assert_problem(response, 413)
    assert "1000 bytes" in body["detail"]
    page = Client().post("/accounts/login/", {"username": "x" * 2000, "password": "y"})
    assert page.status_code == 413


@pytest.mark.django_db
@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000)
def test_uploads_are_left_to_their_own_limit() -> None:
    response = APIClient().post("/api/v1/datasets/abc/uploads/", b"x" * 2000, content_type="text/csv")
    assert response.status_code != 413


def test_the_default_body_limit_holds_a_full_decision_request(settings: Any) -> None:
    assert len(json.dumps({"subject_refs": ["x" * 128] * 10_000})) <= settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    assert settings.FILE_UPLOAD_MAX_MEMORY_SIZE <= settings.DATA_UPLOAD_MAX_MEMORY_SIZE


# --- Idempotency-Key -------------------------------------------------------------------------


def register(client: APIClient, key: str, name: str = "crm") -> Any:
    body = {"name": name, "auth_method": "client_secret_basic", "scopes": ["organisation"]}
    return client.post("/api/v1/clients/", body, format="json", HTTP_IDEMPOTENCY_KEY=key)


@pytest.fixture
def admin_session(holder_admin: User, holder: Organisation) -> APIClient:
    client = APIClient()
    client.force_login(holder_admin)
    return client


@pytest.mark.django_db
def test_a_retried_creation_replays_the_first_answer(admin_session: APIClient, holder: Organisation) -> None:
    first = register(admin_session, "3f1c-retry")
    again = register(admin_session, "3f1c-retry")
    assert first.status_code == again.status_code == 201
    assert again["Idempotency-Replayed"] == "true"
    assert "Idempotency-Replayed" not in first
    assert again.json() == first.json()  # the secret too: the caller may have lost the first answer
    assert OAuthClient.objects.filter(organisation=holder, name="crm").count() == 1
    stored = IdempotentResponse.objects.get(key="3f1c-retry")
    assert first.json()["client_secret"].encode() not in bytes(stored.body)  # sealed


@pytest.mark.django_db
def test_the_same_key_with_another_body_is_a_problem_422(admin_session: APIClient, holder: Organisation) -> None:
    register(admin_session, "k-1")
    body = assert_problem(register(admin_session, "k-1", name="other"), 422)
    assert body["type"].endswith("/problems/idempotency-key-reused")
    assert not OAuthClient.objects.filter(name="other").exists()


@pytest.mark.django_db
def test_keys_belong_to_their_caller(admin_session: APIClient, holder: Organisation, holder_admin: User) -> None:
    from tests.factories import MembershipFactory

    colleague = MembershipFactory(user__username="hugo", organisation=holder, role="admin").user
    other = APIClient()
    other.force_login(colleague)
    register(admin_session, "shared-key")
    second = register(other, "shared-key")
    assert second.status_code == 201
    assert "Idempotency-Replayed" not in second
    assert OAuthClient.objects.filter(name="crm").count() == 2


@pytest.mark.django_db
def test_an_oauth_client_retries_a_link_code_safely(holder_admin: User, holder: Organisation, api: APIClient) -> None:
    client, secret = register_secret_client(holder_admin, holder, name="crm", scopes=("link_codes",))
    token = token_of(api, client, secret, scope="link_codes")["access_token"]
    calls = [
        api.post(
            "/api/v1/link-codes/",
            {"subject_ref": "CUST-77"},
            format="json",
            HTTP_AUTHORIZATION=f"Bearer {token}",
            HTTP_IDEMPOTENCY_KEY="lc-1",
        )
        for _ in range(2)
    ]
    assert [call.status_code for call in calls] == [201, 201]
    assert calls[0].json()["code"] == calls[1].json()["code"]
    assert LinkCode.objects.count() == 1
    assert IdempotentResponse.objects.get(key="lc-1").caller == f"client:{client.client_id}"


@pytest.mark.django_db
def test_an_expired_key_creates_again_and_errors_are_not_kept(admin_session: APIClient) -> None:
    register(admin_session, "old")
    IdempotentResponse.objects.filter(key="old").update(expires_at=timezone.now() - datetime.timedelta(seconds=1))
    assert "Idempotency-Replayed" not in register(admin_session, "old")
    assert OAuthClient.objects.filter(name="crm").count() == 2
    assert IdempotentResponse.objects.filter(key="old").count() == 1
    assert datetime.timedelta(hours=24) == idempotency.IDEMPOTENCY_TTL


@pytest.mark.django_db
def test_a_malformed_key_is_a_problem_400(admin_session: APIClient) -> None:
    assert_problem(register(admin_session, "x" * 300), 400)


def test_only_creating_api_paths_are_covered_and_uploads_are_not() -> None:
    for path in (
        "/api/v1/datasets/",
        "/api/v1/agreements/",
        "/api/v1/access-requests/",
        "/api/v1/clients/",
        "/api/v1/link-codes/",
        "/api/v1/consent-modules/",
        "/api/v1/me/consents/",
        "/api/v1/webhooks/",
        "/api/v1/agreements/abc/versions",
    ):
        assert idempotency.CREATING_PATHS.match(path), path
    for path in ("/api/v1/datasets/abc/uploads/", "/api/v1/grants/abc/revoke", "/api/v1/decisions"):
        assert not idempotency.CREATING_PATHS.match(path), path


@pytest.mark.django_db(transaction=True)
def test_two_identical_requests_at_once_create_one_resource(holder_admin: User, holder: Organisation) -> None:
    barrier = threading.Barrier(2)
    answers: list[Any] = []

    def send() -> None:
        client = APIClient()
        client.force_login(holder_admin)
        barrier.wait()
        try:
            answers.append(register(client, "at-once"))
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(answer.status_code for answer in answers) == [201, 201]
    assert len({answer.json()["client_id"] for answer in answers}) == 1
    assert sum(answer.get("Idempotency-Replayed") == "true" for answer in answers) == 1
    assert OAuthClient.objects.filter(name="crm").count() == 1
