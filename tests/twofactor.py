"""The second factor as a person's authenticator app would answer it: for tests that log in through the form."""

from __future__ import annotations

import re
import time
from typing import Any

import pyotp
from django.test import Client

from broker.models import User
from broker.security import totp
from broker.security.models import TOTPDevice
from tests.factories import PASSWORD

SECRET_ON_PAGE = re.compile(r'id="totp-secret">([A-Z2-7 ]+)<')
RECOVERY_CODE_ON_PAGE = re.compile(r'<code class="secret">([a-z2-9-]+)</code>')


def enrol(user: User) -> str:
    """A confirmed authenticator for the user; its base32 secret."""
    secret = pyotp.random_base32()
    totp.device_install(actor=None, user=user, secret=secret)
    return secret


def secret_on_page(html: str) -> str | None:
    """The key the enrolment page shows for typing into an app (None when the page asks for a code)."""
    found = SECRET_ON_PAGE.search(html)
    return found.group(1).replace(" ", "") if found else None


def code_for(username: str, secret: str | None = None) -> str:
    """A code the server will take now: each step's code is accepted once, so a second login in the same
    30 seconds uses the next step's code (within the ±1 step window), or waits for a fresh step."""
    device = TOTPDevice.objects.filter(user__username=username).first()
    secret = secret or (totp.secret_of(device) if device else None)
    assert secret, f"{username} has no authenticator"
    last_used = device.last_used_step if device else 0
    while True:
        now_step = int(time.time()) // totp.STEP_SECONDS
        for step in range(now_step, now_step + totp.WINDOW_STEPS + 1):
            if step > last_used:
                return pyotp.TOTP(secret, interval=totp.STEP_SECONDS).generate_otp(step)
        time.sleep(1)


def recovery_codes_on_page(html: str) -> list[str]:
    """The recovery codes a page shows once (after enrolment, or a new set from the security page)."""
    return RECOVERY_CODE_ON_PAGE.findall(html)


def password_login(username: str, next_url: str = "") -> tuple[Client, Any]:
    """A new browser giving the login form the username and the test password."""
    client = Client()
    data = {"username": username, "password": PASSWORD}
    if next_url:
        data["next"] = next_url
    return client, client.post("/accounts/login/", data)


def give_code(client: Client, code: str, next_url: str = "") -> Any:
    return client.post("/accounts/2fa/", {"code": code, "next": next_url})


def fully_logged_in(user: User) -> Client:
    """A browser past the password and an authenticator app's code (enrolled first when the user has none)."""
    if not TOTPDevice.objects.filter(user=user, confirmed_at__isnull=False).exists():
        enrol(user)
    client, _ = password_login(user.get_username())
    assert give_code(client, code_for(user.get_username())).status_code == 302
    return client
