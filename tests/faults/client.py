"""What the scenarios do to Tiers over HTTP: citizens withdraw, data users read, clients get tokens."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

import requests

TIMEOUT = 15.0


@dataclass
class Answer:
    """One response, kept whole enough to judge how Tiers failed."""

    status: int
    content_type: str
    body: str
    seconds: float
    records: int | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def _answer(response: requests.Response, started: float) -> Answer:
    records = response.headers.get("Tiers-Records")
    return Answer(
        status=response.status_code,
        content_type=response.headers.get("Content-Type", ""),
        body=response.text,
        seconds=time.monotonic() - started,
        records=int(records) if records is not None else None,
    )


@dataclass
class Citizen:
    """A citizen's browser session, used for the API as the portal's JavaScript-free forms would."""

    base_url: str
    username: str
    password: str
    consents: dict[str, str]
    session: requests.Session = field(default_factory=requests.Session)

    def login(self) -> None:
        page = self.session.get(f"{self.base_url}/accounts/login/", timeout=TIMEOUT)
        page.raise_for_status()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert token, "no CSRF token on the login page"
        response = self.session.post(
            f"{self.base_url}/accounts/login/",
            data={"username": self.username, "password": self.password, "csrfmiddlewaretoken": token.group(1)},
            headers={"Referer": f"{self.base_url}/accounts/login/"},
            timeout=TIMEOUT,
            allow_redirects=False,
        )
        assert response.status_code == 302, f"{self.username} could not log in: {response.status_code}"

    def withdraw(self, purpose: str) -> Answer:
        started = time.monotonic()
        response = self.session.post(
            f"{self.base_url}/api/v1/me/consents/{self.consents[purpose]}/withdraw",
            json={},
            headers={"X-CSRFToken": self.session.cookies.get("csrftoken", "")},
            timeout=TIMEOUT,
        )
        return _answer(response, started)


@dataclass
class DataUser:
    """A data user's client: a token bound to its grant, and reads of the grant's records."""

    base_url: str
    client_id: str
    client_secret: str
    grant: str
    token: str = ""
    session: requests.Session = field(default_factory=requests.Session)

    def fetch_token(self) -> Answer:
        started = time.monotonic()
        response = self.session.post(
            f"{self.base_url}/oauth/token",
            data={"grant_type": "client_credentials", "scope": f"grant:{self.grant}"},
            auth=(self.client_id, self.client_secret),
            timeout=TIMEOUT,
        )
        answer = _answer(response, started)
        if answer.ok:
            self.token = response.json()["access_token"]
        return answer

    def read(self) -> Answer:
        started = time.monotonic()
        response = self.session.get(
            f"{self.base_url}/api/v1/grants/{self.grant}/records",
            headers={"Authorization": f"Bearer {self.token}", "Accept": "application/x-ndjson"},
            timeout=TIMEOUT,
        )
        return _answer(response, started)


def citizens_of(world: dict[str, Any]) -> list[Citizen]:
    return [
        Citizen(world["base_url"], person["username"], world["password"], person["consents"])
        for person in world["citizens"]
    ]


def data_users_of(world: dict[str, Any]) -> dict[str, DataUser]:
    """Each grant's reader, by the grant's purpose."""
    secrets = {client["organisation"]: client for client in world["clients"]}
    readers = {}
    for grant in world["grants"]:
        client = secrets[grant["organisation"]]
        readers[grant["purpose"]] = DataUser(
            world["base_url"], client["client_id"], client["client_secret"], grant["id"]
        )
    return readers
