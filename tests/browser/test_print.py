"""The consent form prints cleanly: what the citizen reads and signs, without the site around it."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from broker.models import Organisation, User
from consent import services
from tests.browser.conftest import log_in
from tests.consent.conftest import MODULE_CONTENT
from tests.factories import CitizenFactory

A4_WIDTH_PX = 794  # 210 mm at 96 dpi


@pytest.mark.django_db(transaction=True)
def test_the_consent_form_prints_its_content_and_nothing_of_the_site(
    page: Page, holder: Organisation, holder_admin: User
) -> None:
    CitizenFactory(username="alice")
    module = services.module_publish(actor=holder_admin, holder=holder, slug="energy", content=MODULE_CONTENT)
    services.link_redeem(
        citizen=User.objects.get(username="alice"),
        code=services.link_code_issue(actor="system", holder=holder, subject_ref="CUST-0001")[1],
    )
    log_in(page, "alice")
    page.set_viewport_size({"width": A4_WIDTH_PX, "height": 1123})
    page.goto(f"/me/modules/{module.pk}/")
    form = page.locator("article.consent-form")
    expect(page.locator("header.site-header")).to_be_visible()  # on screen, the site is there
    expect(page.get_by_role("button").first).to_be_visible()

    page.emulate_media(media="print")
    expect(form).to_be_visible()
    expect(form.get_by_text(MODULE_CONTENT["notice_en"])).to_be_visible()
    for purpose in page.get_by_role("checkbox").all():
        expect(purpose).to_be_visible()  # the choices are part of the printed form
    for hidden in ("header.site-header", "footer.site-footer", "nav", "button", ".language"):
        for element in page.locator(hidden).all():
            expect(element).to_be_hidden()
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the printed form is {overflow}px wider than an A4 page"
    assert page.pdf(format="A4")[:5] == b"%PDF-"
