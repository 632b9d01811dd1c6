"""The portal's other pages, opened in a real browser in English and in French and checked with axe-core."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from broker.models import Organisation, User
from tests.browser.conftest import assert_accessible, log_in, switch_language

LANGUAGES = ["en", "fr"]
HOME = {
    "en": "Data shared in the public interest, on your terms",
    "fr": "Des données partagées dans l’intérêt général, selon vos choix",
}
MEMBERS = {"en": "Members", "fr": "Membres"}


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
