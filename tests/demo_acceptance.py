"""Check a running demo over HTTP with demo-credentials.json alone, as its users would.

    python tests/demo_acceptance.py [path/to/demo-credentials.json]

What the citizens', the sharing and the DGA issues ask of the demo ("Done when"):
- a demo citizen logs in at /accounts/login/, lists their consents, downloads each receipt and
  verifies it against /oauth/jwks with PyJWT; another demo citizen gets 404 on those receipts;
- both organisations read their grants, see disjoint pseudonyms, cannot read each other's grant,
  and a citizen's withdrawal shows on the very next read;
- without logging in, /transparency/, /api/v1/register and the current year's records and annual
  report answer, the report's `jws` verifies against /oauth/jwks, and every demo grant appears in
  both reports.

Nothing here imports Tiers. The withdrawal step changes the demo (chloé withdraws one consent);
`make demo` seeds a fresh demo the next time it starts.
"""

from __future__ import annotations

import datetime
import json
import sys
from pathlib import Path
from typing import Any

import jwt
import requests

NDJSON = "application/x-ndjson"


class Demo:
    def __init__(self, credentials: dict[str, Any]) -> None:
        self.credentials = credentials
        self.base = credentials["base_url"].rstrip("/")
        self.jwks = requests.get(f"{self.base}/oauth/jwks", timeout=30).json()

    def verified(self, compact: str) -> bytes:
        """The payload of a compact JWS signed by a key of /oauth/jwks (PyJWT, ES256 only)."""
        kid = jwt.get_unverified_header(compact)["kid"]
        key = next(jwt.PyJWK(k) for k in self.jwks["keys"] if k.get("kid") == kid)
        return jwt.api_jws.PyJWS().decode(compact, key=key, algorithms=["ES256"])

    def user(self, username: str) -> dict[str, Any]:
        return next(u for u in self.credentials["users"] if u["username"] == username)

    def logged_in(self, username: str) -> requests.Session:
        """A session through the login form, with the CSRF header the API wants."""
        session = requests.Session()
        session.get(f"{self.base}/accounts/login/", timeout=30).raise_for_status()
        csrf = session.cookies["csrftoken"]
        answer = session.post(
            f"{self.base}/accounts/login/",
            data={"username": username, "password": self.user(username)["password"], "csrfmiddlewaretoken": csrf},
            headers={"Referer": f"{self.base}/accounts/login/"},
            allow_redirects=False,
            timeout=30,
        )
        assert answer.status_code == 302, f"{username} could not log in: {answer.status_code}"
        session.headers["X-CSRFToken"] = str(session.cookies["csrftoken"])
        return session

    def grant_token(self, organisation: str, grant_id: str) -> str:
        client = next(
            c
            for c in self.credentials["clients"]
            if c["organisation"] == organisation and c["auth_method"] == "client_secret_basic"
        )
        answer = requests.post(
            f"{self.base}/oauth/token",
            data={"grant_type": "client_credentials", "scope": f"grant:{grant_id}"},
            auth=(client["client_id"], client["client_secret"]),
            timeout=30,
        )
        answer.raise_for_status()
        return str(answer.json()["access_token"])

    def read(self, token: str, grant_id: str) -> tuple[int, list[dict[str, Any]]]:
        answer = requests.get(
            f"{self.base}/api/v1/grants/{grant_id}/records",
            headers={"Authorization": f"Bearer {token}", "Accept": NDJSON},
            timeout=120,
        )
        if answer.status_code != 200:
            return answer.status_code, []
        return 200, [json.loads(line) for line in answer.text.splitlines()]


def citizens(demo: Demo) -> dict[str, Any]:
    alice = demo.logged_in("alice")
    consents = alice.get(f"{demo.base}/api/v1/me/consents/", timeout=30).json()
    assert consents, "alice has no consent"
    verified = 0
    for consent in consents:
        receipt = alice.get(f"{demo.base}/api/v1/consents/{consent['id']}/receipt", timeout=30)
        assert receipt.status_code == 200, receipt.status_code
        assert receipt.headers["Content-Type"].startswith("application/jose")
        record = json.loads(demo.verified(receipt.text))
        assert consent["id"] in json.dumps(record), "the receipt is not this consent's"
        verified += 1
    bruno = demo.logged_in("bruno")
    refused = [bruno.get(f"{demo.base}/api/v1/consents/{c['id']}/receipt", timeout=30).status_code for c in consents]
    assert set(refused) == {404}, refused
    return {"alice_receipts_verified": verified, "bruno_refused": len(refused)}


def grants(demo: Demo) -> dict[str, Any]:
    by_organisation = {g["organisation"]: g["id"] for g in demo.credentials["grants"]}
    tokens = {organisation: demo.grant_token(organisation, grant) for organisation, grant in by_organisation.items()}
    people = {}
    for organisation, grant in by_organisation.items():
        status, records = demo.read(tokens[organisation], grant)
        assert status == 200, (organisation, status)
        people[organisation] = {r["subject_pseudonym"] for r in records}
        for other, other_grant in by_organisation.items():
            if other != organisation:
                assert demo.read(tokens[organisation], other_grant)[0] == 404, (organisation, other)
    city, lab = people["ville-de-marlieux"], people["labo-mobilites"]
    assert city.isdisjoint(lab), "pseudonyms shared across organisations"
    lab_grant = by_organisation["labo-mobilites"]
    before = len(demo.read(tokens["labo-mobilites"], lab_grant)[1])
    chloe = demo.logged_in("chloe")
    research = next(
        c
        for c in chloe.get(f"{demo.base}/api/v1/me/consents/", timeout=30).json()
        if c["holder"] == "ligne-bleue" and "dpv:NonCommercialResearch" in json.dumps(c) and c["state"] == "given"
    )
    withdrawn = chloe.post(f"{demo.base}/api/v1/me/consents/{research['id']}/withdraw", timeout=30)
    assert withdrawn.status_code == 200, withdrawn.status_code
    after = len(demo.read(tokens["labo-mobilites"], lab_grant)[1])
    assert after < before, (before, after)
    counts = {organisation: len(pseudonyms) for organisation, pseudonyms in people.items()}
    return {"pseudonyms": counts, "lab_records_before_after_withdrawal": [before, after]}


def transparency(demo: Demo) -> dict[str, Any]:
    year = datetime.date.today().year
    for path in ("/transparency/", "/api/v1/register"):
        assert requests.get(f"{demo.base}{path}", timeout=30).status_code == 200, path
    records = requests.get(f"{demo.base}/api/v1/reports/records?year={year}", timeout=60).json()["records"]
    report = requests.get(f"{demo.base}/api/v1/reports/annual/{year}", timeout=120).json()
    document = json.loads(demo.verified(report["jws"]))
    users = {u["slug"]: u for u in document["data_users"]}
    for grant in demo.credentials["grants"]:
        row = next(r for r in records if r["grant"] == grant["id"])
        assert (row["organisation"]["slug"], row["purpose"]) == (grant["organisation"], grant["purpose"])
        assert grant["purpose"] in [p["purpose"] for p in users[grant["organisation"]]["purposes"]]
    return {"year": year, "records": len(records), "report_sha256": report["sha256"]}


def main() -> None:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "demo-credentials.json")
    demo = Demo(json.loads(path.read_text()))
    print(json.dumps({"citizens": citizens(demo), "grants": grants(demo), "transparency": transparency(demo)}))


if __name__ == "__main__":
    main()
