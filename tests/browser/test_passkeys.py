"""Passkeys end to end in real Chromium: its virtual authenticator registers one, then logs in with it.

The authenticator is Chromium's own (the DevTools protocol's WebAuthn domain): a CTAP2 platform
authenticator that holds resident keys and verifies its user without a prompt. passkeys.js, the
server's options and py_webauthn's checks are the ones a person's browser meets.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.sync_api import CDPSession, Page, expect

from broker.models import AuditBody, User
from broker.security.models import Passkey
from tests.browser.conftest import assert_accessible, log_in
from tests.factories import PASSWORD


@dataclass
class VirtualAuthenticator:
    session: CDPSession
    id: str

    def credentials(self) -> list[dict[str, Any]]:
        answer = self.session.send("WebAuthn.getCredentials", {"authenticatorId": self.id})
        return list(answer["credentials"])


@pytest.fixture
def authenticator(page: Page) -> Iterator[VirtualAuthenticator]:
    """Chromium's virtual authenticator in this tab, answering every ceremony as a passkey on the device would."""
    session = page.context.new_cdp_session(page)
    session.send("WebAuthn.enable", {"enableUI": False})
    options = {
        "protocol": "ctap2",
        "transport": "internal",
        "hasResidentKey": True,
        "hasUserVerification": True,
        "isUserVerified": True,
        "automaticPresenceSimulation": True,
    }
    added = session.send("WebAuthn.addVirtualAuthenticator", {"options": options})
    yield VirtualAuthenticator(session, added["authenticatorId"])
    session.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": added["authenticatorId"]})
    session.detach()


def password_only(page: Page, username: str) -> None:
    page.goto("/accounts/login/")
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("main form button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/accounts/2fa/"))


@pytest.mark.django_db(transaction=True)
def test_a_passkey_made_in_the_browser_then_stands_in_for_the_code(
    page: Page, portal: str, holder_admin: User, authenticator: VirtualAuthenticator
) -> None:
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    log_in(page, holder_admin.username)  # the password, then an authenticator app enrolled on the way
    page.get_by_role("link", name="Security").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Security")
    expect(page.locator("#passkey-unsupported")).to_be_hidden()

    page.get_by_label("Name of the new passkey").fill("Chromium")
    page.get_by_role("button", name="Add a passkey").click()
    expect(page.locator(".messages")).to_contain_text("Passkey “Chromium” added.")
    expect(page.get_by_role("cell", name="Chromium", exact=True)).to_be_visible()
    (credential,) = authenticator.credentials()
    assert credential["isResidentCredential"] is True
    passkey = Passkey.objects.get(user=holder_admin)
    assert passkey.sign_count == credential["signCount"]
    assert_accessible(page)

    page.get_by_role("button", name=re.compile(r"^Log out")).click()
    password_only(page, holder_admin.username)
    button = page.get_by_role("button", name="Use a passkey")
    expect(button).to_be_visible()
    assert_accessible(page)
    button.click()
    expect(page).to_have_url(f"{portal}/")
    expect(page.get_by_role("link", name="Security")).to_be_visible()

    passkey.refresh_from_db()
    assert passkey.last_used_at is not None
    assert passkey.sign_count == authenticator.credentials()[0]["signCount"]
    assert AuditBody.objects.filter(verb="security.passkey_registered").count() == 1
    assert AuditBody.objects.filter(verb="security.passkey_used").count() == 1
    assert not [error for error in errors if "Content Security Policy" in error], errors
