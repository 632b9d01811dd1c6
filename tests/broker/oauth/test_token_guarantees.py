"""The token endpoint's guarantees while it remembers clients and records assertions with the token.

Each process remembers the clients it authenticated; a change made by another process must still
refuse the very next token request, even before that process's announcement arrives (here it
never does). A client assertion is accepted once, even for two requests at once, and a token is
recorded together with its audit entry and its assertion, or not at all.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from joserfc.jwk import ECKey
from rest_framework.test import APIClient

from broker import services as broker_services
from broker.models import AuditBody
from broker.oauth import clients, services, tokens
from broker.oauth.models import IssuedToken, OAuthClient, UsedAssertion
from tests.broker.oauth.conftest import assertion, basic
from tests.broker.oauth.test_resource import listening
from tests.concurrency import both_at_once

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def ask(api: APIClient, client: OAuthClient, secret: str) -> Any:
    return api.post(
        "/oauth/token", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=basic(client.client_id, secret)
    )


def ask_with_assertion(api: APIClient, signed: str, **form: str) -> Any:
    return api.post(
        "/oauth/token",
        {
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": signed,
            **form,
        },
    )


def client_reads(queries: CaptureQueriesContext) -> int:
    return sum('FROM "broker_oauthclient"' in (query["sql"] or "") for query in queries.captured_queries)


def in_another_worker(change: Callable[[], object]) -> None:
    """Make a change on another thread and database connection, as another worker process would."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            change()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=30)
    assert not errors, errors


def keys_rotated_by_another_worker(api: APIClient, client: OAuthClient, old_key: ECKey, admin: Any) -> ECKey:
    """This process gets a token with `old_key` (so it remembers the client), then another worker
    replaces the client's keys with a new one, which it returns."""
    listening()
    assert ask_with_assertion(api, assertion(client.client_id, old_key)).status_code == 200
    new_key = ECKey.generate_key("P-256", parameters={"kid": "client-key-2", "alg": "ES256"}, private=True)
    in_another_worker(
        lambda: services.client_rotate_credentials(
            actor=admin, client=client, jwks={"keys": [new_key.as_dict(private=False)]}
        )
    )
    return new_key


@pytest.fixture
def announcements_lost(monkeypatch: pytest.MonkeyPatch) -> None:
    """The other worker's announcements never reach this process: only the database tells."""
    monkeypatch.setattr(tokens, "_announce", lambda: None)


# --- remembering clients ------------------------------------------------------------------------


def test_a_remembered_client_is_not_read_again_for_its_next_token(api: APIClient, secret_client) -> None:  # type: ignore[no-untyped-def]
    client, secret = secret_client
    listening()
    assert ask(api, client, secret).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        assert ask(api, client, secret).status_code == 200
    assert client_reads(queries) == 0
    assert IssuedToken.objects.filter(client=client).count() == 2


def test_without_the_liveness_feed_every_token_request_reads_the_client(  # type: ignore[no-untyped-def]
    api: APIClient, secret_client, monkeypatch
) -> None:
    client, secret = secret_client
    monkeypatch.setattr(tokens, "_liveness_generation", lambda: None)
    for _ in range(2):
        with CaptureQueriesContext(connection) as queries:
            assert ask(api, client, secret).status_code == 200
        assert client_reads(queries) == 1


def test_an_announcement_makes_the_next_token_request_read_the_client(api: APIClient, secret_client) -> None:  # type: ignore[no-untyped-def]
    client, secret = secret_client
    listening()
    assert ask(api, client, secret).status_code == 200
    tokens.invalidate_liveness()
    with CaptureQueriesContext(connection) as queries:
        assert ask(api, client, secret).status_code == 200
    assert client_reads(queries) == 1


def test_a_client_is_remembered_30_seconds_at_most(api: APIClient, secret_client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    client, secret = secret_client
    listening()
    assert ask(api, client, secret).status_code == 200
    later = clients.time.monotonic() + tokens.LIVENESS_MAX_AGE_SECONDS
    monkeypatch.setattr(clients.time, "monotonic", lambda: later)
    assert clients.client_remembered(client.client_id) is None


# --- a change by another worker takes effect on the next token request ------------------------


@pytest.mark.django_db(transaction=True)
def test_a_client_disabled_by_another_worker_gets_no_token_on_its_next_request(  # type: ignore[no-untyped-def]
    api: APIClient, secret_client, user_admin, announcements_lost
) -> None:
    client, secret = secret_client
    listening()
    assert ask(api, client, secret).status_code == 200
    assert clients.client_remembered(client.client_id) is not None

    in_another_worker(lambda: services.client_disable(actor=user_admin, client=client))

    refused = ask(api, client, secret)
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_client"
    assert IssuedToken.objects.filter(client=client).count() == 1
    assert AuditBody.objects.filter(verb="token.issued").count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_secret_rotated_by_another_worker_refuses_the_old_one_and_accepts_the_new_one_at_once(  # type: ignore[no-untyped-def]
    api: APIClient, secret_client, user_admin, announcements_lost
) -> None:
    client, old_secret = secret_client
    listening()
    assert ask(api, client, old_secret).status_code == 200
    rotated: dict[str, str | None] = {}

    def rotate() -> None:
        rotated["secret"] = services.client_rotate_credentials(actor=user_admin, client=client)[1]

    in_another_worker(rotate)
    new_secret = rotated["secret"]
    assert new_secret is not None

    refused = ask(api, client, old_secret)
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_client"
    assert ask(api, client, new_secret).status_code == 200
    assert IssuedToken.objects.filter(client=client).count() == 2


@pytest.mark.django_db(transaction=True)
def test_keys_rotated_by_another_worker_refuse_assertions_signed_with_the_old_key(  # type: ignore[no-untyped-def]
    api: APIClient, key_client, client_key, user_admin, announcements_lost
) -> None:
    new_key = keys_rotated_by_another_worker(api, key_client, client_key, user_admin)

    refused = ask_with_assertion(api, assertion(key_client.client_id, client_key))
    assert refused.status_code in (400, 401)
    assert refused.json()["error"] == "invalid_client"
    assert ask_with_assertion(api, assertion(key_client.client_id, new_key)).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_an_organisation_excluded_by_another_worker_gets_no_token_on_its_next_request(  # type: ignore[no-untyped-def]
    api: APIClient, secret_client, data_user, operator, announcements_lost
) -> None:
    client, secret = secret_client
    listening()
    assert ask(api, client, secret).status_code == 200

    in_another_worker(
        lambda: broker_services.organisation_exclude(actor=operator, organisation=data_user, reason="misuse")
    )

    refused = ask(api, client, secret)
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_client"


# --- client assertions are accepted once ---------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_requests_with_one_assertion_at_once_get_one_token(key_client, client_key) -> None:  # type: ignore[no-untyped-def]
    signed = assertion(key_client.client_id, client_key)
    statuses = both_at_once(lambda: ask_with_assertion(APIClient(), signed).status_code)
    assert sorted(statuses) == [200, 400]
    assert IssuedToken.objects.filter(client=key_client).count() == 1
    assert UsedAssertion.objects.filter(client=key_client).count() == 1


def test_an_assertion_is_recorded_with_its_token(api: APIClient, key_client, client_key) -> None:  # type: ignore[no-untyped-def]
    listening()
    for jti in ("first", "second"):  # the second one authenticates a remembered client
        assert ask_with_assertion(api, assertion(key_client.client_id, client_key, jti=jti)).status_code == 200
    assert set(UsedAssertion.objects.values_list("jti", flat=True)) == {"first", "second"}
    replay = ask_with_assertion(api, assertion(key_client.client_id, client_key, jti="second"))
    assert replay.json()["error"] == "invalid_client"
    assert IssuedToken.objects.filter(client=key_client).count() == 2


def test_an_assertion_that_got_no_token_is_spent_all_the_same(api: APIClient, key_client, client_key) -> None:  # type: ignore[no-untyped-def]
    signed = assertion(key_client.client_id, client_key)
    refused = ask_with_assertion(api, signed, scope="datasets")
    assert refused.json()["error"] == "invalid_scope"
    replay = ask_with_assertion(api, signed)
    assert replay.json()["error"] == "invalid_client"
    assert not IssuedToken.objects.exists()


def test_an_assertion_used_at_introspection_is_spent_at_once(api: APIClient, key_client, client_key) -> None:  # type: ignore[no-untyped-def]
    token = ask_with_assertion(api, assertion(key_client.client_id, client_key)).json()["access_token"]
    form = {"token": token, "client_assertion_type": ASSERTION_TYPE}
    form["client_assertion"] = assertion(key_client.client_id, client_key, jti="introspect-once")
    assert api.post("/oauth/introspect", form).json()["active"] is True
    replay = api.post("/oauth/introspect", form)
    assert replay.status_code in (400, 401)
    assert replay.json()["error"] == "invalid_client"


def test_a_token_is_recorded_with_its_audit_entry_and_assertion_or_not_at_all(  # type: ignore[no-untyped-def]
    key_client, client_key, monkeypatch
) -> None:
    def failing_audit(**_: Any) -> None:
        raise RuntimeError("the audit log is unavailable")

    monkeypatch.setattr(services.audit, "record", failing_audit)
    signed = assertion(key_client.client_id, client_key)
    with pytest.raises(RuntimeError):
        ask_with_assertion(APIClient(), signed)
    assert not IssuedToken.objects.exists()
    assert not UsedAssertion.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_first_assertion_signed_with_a_key_rotated_in_by_another_worker_gets_its_token(  # type: ignore[no-untyped-def]
    api: APIClient, key_client, client_key, user_admin, announcements_lost
) -> None:
    new_key = keys_rotated_by_another_worker(api, key_client, client_key, user_admin)
    # This process still remembers the old keys: the new kid is unknown to them, so it reads the client again.
    assert ask_with_assertion(api, assertion(key_client.client_id, new_key)).status_code == 200
    assert ask_with_assertion(api, assertion(key_client.client_id, client_key)).json()["error"] == "invalid_client"


def test_an_assertion_past_its_exp_but_within_the_leeway_stays_spent_after_the_purge(  # type: ignore[no-untyped-def]
    api: APIClient, key_client, client_key
) -> None:
    import time
    import uuid

    from joserfc import jwt

    now = int(time.time())
    claims = {"iss": key_client.client_id, "sub": key_client.client_id, "aud": "http://testserver/oauth/token"}
    claims |= {"iat": now - 60, "exp": now - 30, "jti": uuid.uuid4().hex}  # accepted: authlib allows 60 s of leeway
    signed = jwt.encode({"alg": "ES256", "kid": client_key.kid}, claims, client_key, algorithms=["ES256"])
    assert ask_with_assertion(api, signed).status_code == 200
    services.tokens_purge_expired()
    replayed = ask_with_assertion(api, signed)
    assert replayed.status_code in (400, 401)
    assert replayed.json()["error"] == "invalid_client"
