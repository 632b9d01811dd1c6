"""The load test's clients, for locust: run by bench/bench_load.py, headless, from bench/.venv-tools.

    locust -f bench/locustfile.py --headless -u USERS -r USERS -t SECONDS --host http://127.0.0.1:PORT

LOAD_INPUT names the JSON bench_load.py writes (the world, the citizens' sessions, the mix, the
warm-up and the counted window); LOAD_SAMPLES, the JSON this file writes when locust quits: one
sample per request ([kind, status, milliseconds, seconds from the start to the answer's end]) and
the first few answers that were not 2xx. bench_load.py counts and ranks them.

Each user is a closed loop with no think time, drawing its next call from the mix:

    token     a data user's client credentials token for its hosted grant (client_secret_basic)
    read      that grant's records (JSON Lines, read to the end) with a token it keeps
    decision  the holder's API asking whom the federated grant may include, for a batch of its
              customers' references (the holder's client, scope `decisions`)
    consent   one of its four citizens pauses, or resumes, one of their consents (session + CSRF)
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import random
import time
from http.cookiejar import DefaultCookiePolicy
from pathlib import Path
from typing import Any

import gevent
from locust import FastHttpUser, constant, events, task

INPUT: dict[str, Any] = json.loads(Path(os.environ["LOAD_INPUT"]).read_text())
SAMPLES = Path(os.environ["LOAD_SAMPLES"])
MIX: dict[str, int] = INPUT["mix"]
WORLD: dict[str, Any] = INPUT["world"]
TOKEN_LIFETIME_USED = 240  # tokens live 300 s: renewed well before they expire

started_at = 0.0
samples: list[list[Any]] = []
refused: list[dict[str, Any]] = []
decided: list[list[float]] = []  # [seconds from the start, subjects included] of each decision answered 200
numbers = itertools.count()


@events.test_start.add_listener
def _on_test_start(environment: Any, **_: Any) -> None:
    """The clock starts; locust's own statistics (its CSV) start again after the warm-up, as ours count."""
    global started_at
    started_at = time.time()
    gevent.spawn_later(INPUT["warmup"], environment.stats.reset_all)


@events.request.add_listener
def _on_request(name: str, response_time: float, response: Any, start_time: float, exception: Any, **_: Any) -> None:
    if name not in MIX:
        return  # a user's set-up or a token renewal: not part of the mix
    status = getattr(response, "status_code", 0) or 0
    samples.append([name, status, round(response_time, 2), round(start_time + response_time / 1000 - started_at, 3)])
    if not 200 <= status < 300 and len(refused) < 20:
        body = getattr(response, "text", "") or repr(exception)
        refused.append({"kind": name, "status": status, "body": (body or "")[:300]})


@events.quitting.add_listener
def _on_quitting(**_: Any) -> None:
    SAMPLES.write_text(json.dumps({"samples": samples, "refused": refused, "decided": decided}))


def _basic(client: dict[str, Any]) -> str:
    return "Basic " + base64.b64encode(f"{client['client_id']}:{client['client_secret']}".encode()).decode()


class Client(FastHttpUser):
    """A data user's client, the holder's API and four citizens, taking turns on one connection."""

    wait_time = constant(0)

    def on_start(self) -> None:
        # Each user speaks for several citizens: their session cookies go by hand, never from a jar.
        self.client.cookiejar.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        number = next(numbers)
        self.rng = random.Random(number)  # which consent to change next: reproducible, not a secret
        self.grant = WORLD["grants"][number % len(WORLD["grants"])]
        clients = {client["organisation"]: client for client in WORLD["clients"]}
        self.token_form = f"grant_type=client_credentials&scope=grant:{self.grant['id']}"
        self.token_auth = _basic(clients[self.grant["organisation"]])
        federated = WORLD["federated"]
        self.decision_body = json.dumps({"grant": federated["grant"], "subjects": federated["subjects"]})
        self.holder_auth = _basic(clients[federated["holder"]])
        self.citizens = INPUT["sessions"][number * 4 : number * 4 + 4]
        self.paused: dict[str, bool] = {}
        self.access, self.access_at = self._token(self.token_auth, self.token_form, "setup"), time.monotonic()
        self.decider = self._token(self.holder_auth, "grant_type=client_credentials&scope=decisions", "setup")

    def _token(self, auth: str, form: str, name: str) -> str:
        response = self.client.post(
            "/oauth/token",
            data=form,
            headers={"Authorization": auth, "Content-Type": "application/x-www-form-urlencoded"},
            name=name,
        )
        return str(json.loads(response.text or "{}").get("access_token", ""))

    @task(MIX["token"])
    def token(self) -> None:
        self._token(self.token_auth, self.token_form, "token")

    @task(MIX["read"])
    def read(self) -> None:
        if time.monotonic() - self.access_at > TOKEN_LIFETIME_USED:
            self.access, self.access_at = self._token(self.token_auth, self.token_form, "renew"), time.monotonic()
        headers = {"Authorization": f"Bearer {self.access}", "Accept": "application/x-ndjson"}
        self.client.get(f"/api/v1/grants/{self.grant['id']}/records", headers=headers, name="read")

    @task(MIX["decision"])
    def decision(self) -> None:
        headers = {"Authorization": f"Bearer {self.decider}", "Content-Type": "application/json"}
        response = self.client.post("/api/v1/decisions", data=self.decision_body, headers=headers, name="decision")
        if response.status_code == 200:
            included = sum(subject["include"] for subject in json.loads(response.text)["subjects"])
            decided.append([round(time.time() - started_at, 3), included])

    @task(MIX["consent"])
    def consent(self) -> None:
        citizen = self.rng.choice(self.citizens)
        consent = self.rng.choice(list(citizen["consents"].values()))
        action = "resume" if self.paused.get(consent) else "pause"
        headers = {"Cookie": citizen["cookie"], "X-CSRFToken": citizen["csrf"], "Content-Type": "application/json"}
        response = self.client.post(
            f"/api/v1/me/consents/{consent}/{action}", data="{}", headers=headers, name="consent"
        )
        if response.status_code == 200:
            self.paused[consent] = action == "pause"
