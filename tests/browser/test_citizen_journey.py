"""A citizen's whole journey in a real browser, in English and in French, every page checked with axe-core."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jwt
import pytest
from playwright.sync_api import Page, expect

from broker.models import Organisation, User
from consent import services
from consent.models import ConsentRecord
from tests.browser.conftest import assert_accessible, log_in, switch_language
from tests.consent.conftest import MODULE_CONTENT
from tests.factories import CitizenFactory

BASE64URL = re.compile(r"[A-Za-z0-9_-]+")

# What the citizen reads, written out rather than looked up, so that a missing translation fails.
TEXT: dict[str, dict[str, str]] = {
    "en": {
        "hello": "Hello, Alice",
        "link_page": "Link an account with a code",
        "code": "Link code from your data holder",
        "link": "Link my account",
        "linked": "Your account is now linked with Volta Énergie.",
        "title": MODULE_CONTENT["title_en"],
        "notice": MODULE_CONTENT["notice_en"],
        "purpose": "Scientific research",
        "agree": "I agree to the purposes I ticked",
        "thanks": "Thank you. You agreed to 1 purpose",
        "receipt": "Download receipt",
        "verified": "Signature verified",
        "withdraw": "Withdraw",
        "withdrew": "You withdrew your consent to “Scientific research” for Volta Énergie.",
        "history": "Every change of this consent, oldest first",
        "event": "It was withdrawn",
        "state": "withdrawn",
    },
    "fr": {
        "hello": "Bonjour, Alice",
        "link_page": "Associer un compte avec un code",
        "code": "Code d’association remis par votre détenteur de données",
        "link": "Associer mon compte",
        "linked": "Votre compte est désormais associé à Volta Énergie.",
        "title": MODULE_CONTENT["title_fr"],
        "notice": MODULE_CONTENT["notice_fr"],
        "purpose": "Recherche scientifique",
        "agree": "J’accepte les finalités que j’ai cochées",
        "thanks": "Merci. Vous avez accepté 1 finalité",
        "receipt": "Télécharger le reçu",
        "verified": "Signature vérifiée",
        "withdraw": "Retirer",
        "withdrew": "Vous avez retiré votre consentement à la finalité « Recherche scientifique » auprès de Volta",
        "history": "Toutes les modifications de ce consentement, de la plus ancienne à la plus récente",
        "event": "Il a été retiré",
        "state": "retiré",
    },
}


def read_receipt(compact: str, jwks: dict[str, Any]) -> dict[str, Any]:
    """A compact JWS (three base64url parts), checked against the published keys as anyone would."""
    parts = compact.split(".")
    assert len(parts) == 3, compact
    assert all(BASE64URL.fullmatch(part) for part in parts), compact
    kid = jwt.get_unverified_header(compact)["kid"]
    key = next(jwt.PyJWK(k) for k in jwks["keys"] if k["kid"] == kid)
    return json.loads(jwt.api_jws.decode_complete(compact, key.key, algorithms=["ES256"])["payload"])


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("language", ["en", "fr"])
def test_a_citizen_links_agrees_checks_her_receipt_and_withdraws_in_her_language(
    page: Page, language: str, holder: Organisation, holder_admin: User
) -> None:
    text = TEXT[language]
    CitizenFactory(username="alice")
    services.module_publish(actor=holder_admin, holder=holder, slug="energy", content=MODULE_CONTENT)
    _, code = services.link_code_issue(actor="system", holder=holder, subject_ref="CUST-0001")
    heading = page.get_by_role("heading", level=1)
    message = page.get_by_role("status")

    page.goto("/me/")  # sent to log in first
    switch_language(page, language)
    assert_accessible(page)
    log_in(page, "alice")
    expect(page).to_have_url(re.compile(r"/me/$"))
    expect(heading).to_have_text(text["hello"])
    assert_accessible(page)

    page.get_by_role("link", name=text["link_page"]).click()
    expect(heading).to_have_text(text["link_page"])
    assert_accessible(page)
    page.get_by_label(text["code"]).fill(code)
    page.get_by_role("button", name=text["link"]).click()
    expect(message).to_contain_text(text["linked"])
    assert_accessible(page)

    page.get_by_role("link", name=text["title"]).click()
    expect(heading).to_have_text(text["title"])
    expect(page.get_by_text(text["notice"])).to_be_visible()
    assert_accessible(page)
    page.get_by_role("checkbox", name=text["purpose"]).check()
    expect(page.get_by_role("checkbox", checked=True)).to_have_count(1)
    page.get_by_role("button", name=text["agree"]).click()
    expect(message).to_contain_text(text["thanks"])
    record = ConsentRecord.objects.get(citizen__username="alice")
    assert (record.purpose, record.state) == ("dpv:ScientificResearch", "given")

    page.get_by_role("link", name=text["purpose"], exact=True).click()
    expect(page).to_have_url(re.compile(rf"/me/consents/{record.pk}/$"))
    expect(page.get_by_text(text["verified"])).to_be_visible()
    assert_accessible(page)
    with page.expect_download() as download:
        page.get_by_role("link", name=text["receipt"]).click()
    assert download.value.suggested_filename == f"consent-{record.pk}-receipt.jws"
    claims = read_receipt(Path(download.value.path()).read_text(), page.request.get("/oauth/jwks").json())
    assert (claims["@id"], claims["hasConsentStatus"]) == (f"urn:uuid:{record.pk}", "dpv:ConsentGiven")

    page.get_by_role("button", name=text["withdraw"], exact=True).click()
    expect(message).to_contain_text(text["withdrew"])
    page.get_by_role("link", name=text["purpose"], exact=True).click()
    latest = page.get_by_role("table", name=text["history"]).get_by_role("row").last
    expect(latest).to_contain_text(text["event"])
    expect(latest.get_by_role("cell").last).to_have_text(text["state"])
    expect(page.get_by_text(text["verified"])).to_be_visible()
    assert_accessible(page)
    record.refresh_from_db()
    assert record.state == "withdrawn"
