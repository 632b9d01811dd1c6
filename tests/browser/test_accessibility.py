"""The portal's other pages, opened in a real browser in English and in French and checked with axe-core."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from broker.models import Organisation, User
from broker.security.models import Passkey
from consent.models import ConsentModule
from tests.browser.conftest import assert_accessible, log_in, switch_language
from tests.factories import PASSWORD
from tests.sharing.conftest import module
from tests.twofactor import code_for, secret_on_page
from tests.webauthn import SoftAuthenticator

LANGUAGES = ["en", "fr"]
HOME = {
    "en": "Data shared in the public interest, on your terms",
    "fr": "Des données partagées dans l’intérêt général, selon vos choix",
}
MEMBERS = {"en": "Members", "fr": "Membres"}
SECURITY = {"en": "Security", "fr": "Sécurité"}
CONSENT_MODULES = {"en": "Consent modules", "fr": "Modules de consentement"}
PUBLISH = {"en": "Publish", "fr": "Publier"}

__all__ = ["module"]  # a fixture used below


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("path", ["/", "/accounts/signup/", "/accounts/password_reset/"])
def test_a_public_page_passes_axe_in_each_language(page: Page, portal: str, language: str, path: str) -> None:
    page.context.add_cookies([{"name": "django_language", "value": language, "url": portal}])
    page.goto(path)
    expect(page.locator("html")).to_have_attribute("lang", language)
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    if path == "/":
        expect(page.get_by_role("heading", level=1)).to_have_text(HOME[language])
    assert_accessible(page)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("language", LANGUAGES)
def test_an_organisation_admin_s_home_and_organisation_pages_pass_axe(
    page: Page, portal: str, language: str, holder: Organisation, holder_admin: User
) -> None:
    heading = page.get_by_role("heading", level=1)
    page.goto("/accounts/login/")
    switch_language(page, language)
    log_in(page, holder_admin.username)
    expect(page).to_have_url(f"{portal}/")
    expect(heading).to_have_text(HOME[language])
    assert_accessible(page)
    page.get_by_role("link", name=holder.name).click()
    expect(heading).to_have_text(holder.name)
    expect(page.get_by_role("heading", name=MEMBERS[language])).to_be_visible()
    assert_accessible(page)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("language", LANGUAGES)
def test_the_second_factor_pages_pass_axe(page: Page, portal: str, language: str, holder_admin: User) -> None:
    """Enrolment, the recovery codes, the security page and the second-factor step with a passkey offered."""
    heading = page.get_by_role("heading", level=1)
    page.goto("/accounts/login/")
    switch_language(page, language)

    def password() -> None:
        page.locator("input[name=username]").fill(holder_admin.username)
        page.locator("input[name=password]").fill(PASSWORD)
        page.locator("main form button[type=submit]").click()
        expect(page).to_have_url(re.compile(r"/accounts/2fa/"))

    password()
    expect(page.locator("#totp-secret")).to_be_visible()
    assert_accessible(page)
    page.locator("input[name=code]").fill(code_for(holder_admin.username, secret_on_page(page.content())))
    page.locator("main form button[type=submit]").first.click()
    expect(page.locator("#recovery-codes li")).to_have_count(10)
    assert_accessible(page)

    software = SoftAuthenticator()
    Passkey.objects.create(
        user=holder_admin, name="laptop", credential_id=software.credential_id, public_key=software.cose_public_key()
    )
    page.goto("/accounts/security/")
    expect(heading).to_have_text(SECURITY[language])
    expect(page.locator("#passkey-register")).to_be_visible()
    assert_accessible(page)

    page.locator("header form button[type=submit]").first.click()
    page.goto("/accounts/login/")
    password()
    expect(page.locator("#passkey-login-button")).to_be_visible()
    assert_accessible(page)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("language", LANGUAGES)
def test_a_holder_s_consent_module_pages_pass_axe(
    page: Page, portal: str, language: str, holder: Organisation, holder_admin: User, module: ConsentModule
) -> None:
    """The list of modules, the publishing form (empty, filled for a new version, with errors) and a preview."""
    heading = page.get_by_role("heading", level=1)
    page.goto("/accounts/login/")
    switch_language(page, language)
    log_in(page, holder_admin.username)
    page.goto(f"/org/{holder.slug}/consent-modules/")
    expect(heading).to_have_text(CONSENT_MODULES[language])
    assert_accessible(page)
    for path in ("new", f"new?module={module.slug}"):
        page.goto(f"/org/{holder.slug}/consent-modules/{path}")
        expect(page.locator("input[name=slug]")).to_be_visible()
        assert_accessible(page)
    page.locator("input[name=title_en]").fill("")
    page.locator("input[name=duration_days]").fill("0")
    page.locator("main form button[type=submit]").filter(has_text=PUBLISH[language]).click()
    expect(page.locator("#form-errors-title")).to_be_visible()
    assert_accessible(page)
    page.goto(f"/org/{holder.slug}/consent-modules/{module.pk}/")
    expect(heading).to_have_text(module.title_fr if language == "fr" else module.title_en)
    expect(page.locator("input[name=purposes]").first).to_be_disabled()
    assert_accessible(page)


ACCOUNT = {
    "en": {
        "page": "My data and account",
        "download": "Download my data (JSON)",
        "delete": "Delete my account",
        "delete_link": "Delete my account…",
        "confirm": "Delete my account for good",
        "wrong": "This is not your password.",
        "goodbye": "Your account is deleted",
    },
    "fr": {
        "page": "Mes données et mon compte",
        "download": "Télécharger mes données (JSON)",
        "delete": "Supprimer mon compte",
        "delete_link": "Supprimer mon compte…",
        "confirm": "Supprimer définitivement mon compte",
        "wrong": "Ce n’est pas votre mot de passe.",
        "goodbye": "Votre compte est supprimé",
    },
}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("language", LANGUAGES)
def test_a_citizen_s_data_and_account_pages_pass_axe(page: Page, portal: str, language: str, alice: User) -> None:
    """My data and account, the download, the erasure page (as it opens, then with a wrong password) and goodbye."""
    text = ACCOUNT[language]
    heading = page.get_by_role("heading", level=1)
    page.goto("/accounts/login/")
    switch_language(page, language)
    log_in(page, alice.username)
    page.goto("/me/")
    page.get_by_role("link", name=text["page"], exact=True).click()
    expect(heading).to_have_text(text["page"])
    assert_accessible(page)
    with page.expect_download() as download:
        page.get_by_role("link", name=text["download"]).click()
    assert re.fullmatch(r"tiers-export-\d{4}-\d{2}-\d{2}\.json", download.value.suggested_filename)

    page.get_by_role("link", name=text["delete_link"]).click()
    expect(heading).to_have_text(text["delete"])
    assert_accessible(page)
    page.locator("input[name=password]").fill("not my password")
    page.locator("input[name=confirm]").check()
    page.get_by_role("button", name=text["confirm"]).click()
    expect(page.get_by_text(text["wrong"])).to_be_visible()
    assert_accessible(page)
    assert User.objects.filter(pk=alice.pk).exists()

    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("input[name=confirm]").check()
    page.get_by_role("button", name=text["confirm"]).click()
    expect(heading).to_have_text(text["goodbye"])
    assert_accessible(page)
    assert not User.objects.filter(pk=alice.pk).exists()
