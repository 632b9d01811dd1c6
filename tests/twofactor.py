"""The second factor as a person's authenticator app would answer it: for tests that log in through the form."""

from __future__ import annotations

import re
import time

import pyotp

from broker.models import User
from broker.security import totp
from broker.security.models import TOTPDevice

SECRET_ON_PAGE = re.compile(r'id="totp-secret">([A-Z2-7 ]+)<')


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
