"""The broker's main flow through the public HTTP API alone, on a live server with a real worker.

A holder registers a dataset and uploads data; the agreement is signed and
countersigned; a citizen consents for mobility research only; the city asks
for that purpose and the holder approves; the city's token reads the
consenting citizen's records under a pseudonym and nothing else; the lab sees
other pseudonyms; a withdrawal shows on the very next read; a revoked grant's
token is refused.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from django.utils import timezone

from broker.models import Organisation, User
from tests.conftest import wait_for
from tests.factories import PASSWORD
from tests.sharing.conftest import JUSTIFICATION, MODULE, PUBLIC_BENEFIT, RESEARCH, TRIPS_SCHEMA
from tests.twofactor import code_for, secret_on_page

pytestmark = pytest.mark.django_db(transaction=True)


class Person:
    """Someone using the portal and the API with a session, as a browser would."""

    def __init__(self, base: str, username: str) -> None:
        self.base = base
        self.http = requests.Session()
        self.http.get(f"{base}/accounts/login/").raise_for_status()
        answer = self.http.post(
            f"{base}/accounts/login/",
            data={"username": username, "password": PASSWORD, "csrfmiddlewaretoken": self.http.cookies["csrftoken"]},
            allow_redirects=False,
        )
        assert answer.status_code == 302, answer.text[:500]
        if answer.headers["Location"].startswith("/accounts/2fa/"):
            self._second_factor(username, answer.headers["Location"])

    def _second_factor(self, username: str, location: str) -> None:
        """Operators and admins: enrol with the key the page shows, as a person's app would, and give its code."""
        page = self.http.get(f"{self.base}{location}")
        page.raise_for_status()
        secret = secret_on_page(page.text)
        answer = self.http.post(
            f"{self.base}/accounts/2fa/",
            data={"code": code_for(username, secret), "csrfmiddlewaretoken": self.http.cookies["csrftoken"]},
            allow_redirects=False,
        )
        # Enrolment ends on the page of recovery codes, shown once; a known device's code redirects.
        assert answer.status_code == (200 if secret else 302), answer.text[:500]

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"X-CSRFToken": self.http.cookies["csrftoken"], **kwargs.pop("headers", {})}
        return self.http.request(method, f"{self.base}{path}", headers=headers, **kwargs)

    def form(self, path: str, data: dict[str, str]) -> requests.Response:
        return self.http.post(
            f"{self.base}{path}", data={**data, "csrfmiddlewaretoken": self.http.cookies["csrftoken"]}
        )


def ok(response: requests.Response, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.status_code}: {response.text[:1000]}"
    return response.json() if "json" in response.headers.get("Content-Type", "") else response.text


def client_of(admin: Person, name: str, scopes: list[str]) -> tuple[str, str]:
    body = ok(
        admin.call(
            "POST",
            "/api/v1/clients/",
            json={"name": name, "auth_method": "client_secret_basic", "scopes": scopes},
        ),
        201,
    )
    return body["client_id"], body["client_secret"]


def token(base: str, client: tuple[str, str], scope: str) -> str:
    session = OAuth2Session(client[0], client[1], token_endpoint_auth_method="client_secret_basic", scope=scope)
    return str(session.fetch_token(f"{base}/oauth/token", grant_type="client_credentials")["access_token"])


def read(base: str, grant_token: str, grant_id: str) -> requests.Response:
    return requests.get(
        f"{base}/api/v1/grants/{grant_id}/records",
        headers={"Authorization": f"Bearer {grant_token}", "Accept": "application/x-ndjson"},
        timeout=30,
    )


def lines(response: requests.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text[:500]
    assert response.headers["Content-Type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in response.text.splitlines()]


def test_consent_decides_what_each_grant_delivers_at_every_read(
    live_server: Any,
    settings: Any,
    celery_worker_process: Any,
    holder: Organisation,
    holder_admin: User,
    data_user: Organisation,
    user_admin: User,
    operator: User,
    alice: User,
    bob: User,
) -> None:
    from tests.factories import MembershipFactory, OrganisationFactory

    settings.TIERS_BASE_URL = base = live_server.url
    lab = OrganisationFactory(
        slug="labo", kind=Organisation.Kind.USER, recipient_category=Organisation.RecipientCategory.RESEARCH_BODY
    )
    lab_admin_user = MembershipFactory(user__username="lea", organisation=lab).user

    hana, olga = Person(base, holder_admin.username), Person(base, operator.username)
    citizen_alice, citizen_bob = Person(base, alice.username), Person(base, bob.username)
    ugo, lea = Person(base, user_admin.username), Person(base, lab_admin_user.username)

    # The holder publishes its consent module and registers a hosted dataset.
    module = ok(hana.call("POST", "/api/v1/consent-modules/", json={"slug": "mobility", **MODULE}), 201)
    dataset = ok(
        hana.call(
            "POST",
            "/api/v1/datasets/",
            json={
                "slug": "trips",
                "title": "Trips",
                "mode": "hosted",
                "table_schema": TRIPS_SCHEMA,
                "subject_key_field": "traveller",
                "personal_fields": ["traveller", "origin", "destination"],
                "data_categories": ["dpv-pd:Location"],
            },
        ),
        201,
    )
    uploads = f"/api/v1/datasets/{dataset['id']}/uploads/"

    # A malformed upload is rejected line by line and loads nothing.
    bad = "traveller,day,origin,destination,km\nT-1,2026-13-01,A,B,1\nT-2,2026-03-01,A,B,-4\nT-3,2026-03-01,A,B,2\n"
    rejected = ok(hana.call("POST", uploads, data=bad.encode(), headers={"Content-Type": "text/csv"}), 202)
    wait_for(lambda: ok(hana.call("GET", f"{uploads}{rejected['id']}"))["state"] != "received")
    rejected = ok(hana.call("GET", f"{uploads}{rejected['id']}"))
    assert (rejected["state"], rejected["rows_loaded"], rejected["rows_rejected"]) == ("rejected", 0, 2)
    assert [(e["line"], e["field"]) for e in rejected["errors"]] == [(2, "day"), (3, "km")]

    # An oversized upload is refused before anything is recorded.
    settings.TIERS_UPLOAD_MAX_BYTES = 64
    too_big = hana.call("POST", uploads, data=b"x" * 200, headers={"Content-Type": "text/csv"})
    assert too_big.status_code == 413
    assert too_big.headers["Content-Type"] == "application/problem+json"
    settings.TIERS_UPLOAD_MAX_BYTES = 1 << 20
    assert len(ok(hana.call("GET", uploads))["results"]) == 1

    rows = [
        ("T-ALICE", "2026-03-01", "Gare", "Campus", 4.5),
        ("T-ALICE", "2026-03-02", "Campus", "Gare", 4.5),
        ("T-BOB", "2026-03-01", "Port", "Mairie", 2.0),
        ("T-CAROL", "2026-03-01", "Nord", "Sud", 7.0),
    ]
    good = "traveller,day,origin,destination,km\n" + "".join(",".join(map(str, r)) + "\n" for r in rows)
    loaded = ok(hana.call("POST", uploads, data=good.encode(), headers={"Content-Type": "text/csv"}), 202)
    wait_for(lambda: ok(hana.call("GET", f"{uploads}{loaded['id']}"))["state"] == "loaded")

    # The agreement: research only, reviewed by the holder; signed, then countersigned.
    now = timezone.now()
    draft = ok(
        hana.call(
            "POST",
            "/api/v1/agreements/",
            json={
                "title": "Mobility research",
                "datasets": [dataset["id"]],
                "purposes": [RESEARCH],
                "recipient_categories": ["public-authority", "research-body"],
                "consent_modules": ["mobility"],
                "approval_mode": "holder",
                "valid_from": (now - datetime.timedelta(days=1)).isoformat(),
                "valid_until": (now + datetime.timedelta(days=400)).isoformat(),
            },
        ),
        201,
    )
    signed = ok(
        hana.call("POST", f"/api/v1/agreements/{draft['id']}/sign", json={"content_hash": draft["content_hash"]})
    )
    assert signed["state"] == "signed"
    agreement = ok(
        olga.call("POST", f"/api/v1/agreements/{draft['id']}/countersign", json={"content_hash": draft["content_hash"]})
    )
    assert agreement["state"] == "active"

    # Citizens link their accounts; alice consents to research, bob to something else.
    for person, ref in ((citizen_alice, "T-ALICE"), (citizen_bob, "T-BOB")):
        code = ok(hana.call("POST", "/api/v1/link-codes/", json={"subject_ref": ref}), 201)["code"]
        assert person.form("/me/link/", {"code": code}).status_code == 200
    consents = ok(
        citizen_alice.call("POST", "/api/v1/me/consents/", json={"module": module["id"], "purposes": [RESEARCH]}), 201
    )
    ok(
        citizen_bob.call("POST", "/api/v1/me/consents/", json={"module": module["id"], "purposes": [PUBLIC_BENEFIT]}),
        201,
    )

    # The city asks: a purpose the agreement does not allow is refused with the rule named.
    city_client = client_of(ugo, "city analytics", ["grants", "access_requests"])
    city_api = {"Authorization": f"Bearer {token(base, city_client, 'access_requests')}"}
    period = {
        "starts_at": now.isoformat(),
        "ends_at": (now + datetime.timedelta(days=90)).isoformat(),
        "retention_days": 90,
    }
    wanted = {
        "items": [{"dataset": dataset["id"], "fields": ["day", "origin", "destination"]}],
        "justification": JUSTIFICATION,
        **period,
    }
    refused = requests.post(
        f"{base}/api/v1/access-requests/", json={**wanted, "purpose": PUBLIC_BENEFIT}, headers=city_api, timeout=10
    )
    assert refused.status_code == 422
    assert refused.headers["Content-Type"] == "application/problem+json"
    assert [v["rule"] for v in refused.json()["violations"]] == ["purpose_allowed"]
    assert ok(ugo.call("GET", "/api/v1/access-requests/"))["results"] == []  # nothing created

    submitted = requests.post(
        f"{base}/api/v1/access-requests/", json={**wanted, "purpose": RESEARCH}, headers=city_api, timeout=10
    )
    city_request = ok(submitted, 201)
    assert (city_request["state"], city_request["coverage"]) == ("pending", 1)  # alice alone consents to this use

    # The holder reviews its inbox and approves; the grant is created.
    inbox = ok(hana.call("GET", "/api/v1/access-requests/?state=pending"))["results"]
    assert [r["id"] for r in inbox] == [city_request["id"]]
    approved = ok(hana.call("POST", f"/api/v1/access-requests/{city_request['id']}/approve", json={"reason": "fits"}))
    (city_grant,) = approved["grants"]

    # The city reads: alice's trips under a pseudonym, only the granted fields; not bob's, not carol's.
    city_token = token(base, city_client, f"grant:{city_grant}")
    records = lines(read(base, city_token, city_grant))
    assert sorted(r["origin"] for r in records) == ["Campus", "Gare"]
    assert all(set(r) == {"subject_pseudonym", "day", "origin", "destination"} for r in records)
    assert "T-ALICE" not in json.dumps(records)
    (city_pseudonym,) = {r["subject_pseudonym"] for r in records}

    # The lab asks and is approved too: it sees alice under another pseudonym, and cannot read the city's grant.
    lab_client = client_of(lea, "lab pipeline", ["grants", "access_requests"])
    lab_api = {"Authorization": f"Bearer {token(base, lab_client, 'access_requests')}"}
    lab_request = ok(
        requests.post(
            f"{base}/api/v1/access-requests/", json={**wanted, "purpose": RESEARCH}, headers=lab_api, timeout=10
        ),
        201,
    )
    (lab_grant,) = ok(hana.call("POST", f"/api/v1/access-requests/{lab_request['id']}/approve", json={"reason": "ok"}))[
        "grants"
    ]
    lab_token = token(base, lab_client, f"grant:{lab_grant}")
    lab_names = {r["subject_pseudonym"] for r in lines(read(base, lab_token, lab_grant))}
    assert len(lab_names) == 1
    assert city_pseudonym not in lab_names
    assert read(base, lab_token, city_grant).status_code == 404

    # Alice sees who used her data, each use with its audit entry.
    accesses = ok(citizen_alice.call("GET", "/api/v1/me/accesses/"))["results"]
    assert {a["organisation"] for a in accesses} == {"marlieux", "labo"}
    assert all(a["records"] == 2 and a["purpose"] == RESEARCH for a in accesses)
    assert ok(citizen_bob.call("GET", "/api/v1/me/accesses/"))["results"] == []

    # Alice withdraws: the very next read excludes her.
    (alice_consent,) = consents if isinstance(consents, list) else consents["results"]
    ok(citizen_alice.call("POST", f"/api/v1/me/consents/{alice_consent['id']}/withdraw"))
    assert lines(read(base, city_token, city_grant)) == []

    # The holder revokes the city's grant: its token is refused at once.
    ok(hana.call("POST", f"/api/v1/grants/{city_grant}/revoke", json={"reason": "the study ended"}))
    refused_read = read(base, city_token, city_grant)
    assert refused_read.status_code == 401
    assert 'error="invalid_token"' in refused_read.headers["WWW-Authenticate"]
