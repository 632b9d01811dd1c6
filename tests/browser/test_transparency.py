"""The public transparency pages in real Chromium: axe in English and French, and the proof checked by proof.js."""

from __future__ import annotations

import datetime

import pytest
from django.db import transaction
from playwright.sync_api import Page, expect

from broker import audit
from broker.audit import sequencer
from broker.dga.models import AnnualReport, OperatorProfile
from broker.dga.profile import DEMO_PROFILE
from broker.models import Organisation, User
from sharing.models import Agreement, Dataset
from tests.browser.conftest import assert_accessible, switch_language
from tests.sharing.conftest import agreement, grant_for, module, trips

__all__ = ["agreement", "module", "trips"]  # fixtures used below

LANGUAGES = ["en", "fr"]
PAGES = ["/transparency/", "/transparency/agreements/", "/transparency/grants/", "/transparency/log/",
         "/transparency/reports/"]  # fmt: skip


@pytest.fixture
def public_records(
    holder_admin: User, agreement: Agreement, trips: Dataset, data_user: Organisation, user_admin: User, alice: User
) -> Agreement:
    """A registration, an agreement in force, a grant, a report, and a sequenced log with a citizen's entry."""
    OperatorProfile.objects.create(registered_at=datetime.date(2026, 1, 15), **DEMO_PROFILE)
    grant_for(user_admin, data_user, trips)
    AnnualReport.objects.create(year=2025, document={}, jws="x.y.z", sha256="ab" * 32, audit_entry_id=1)
    with transaction.atomic():
        audit.record(verb="consent.given", actor="system", subject="thing:1", details={}, citizen=alice)
    sequencer.sequence()
    return agreement


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("language", LANGUAGES)
def test_every_transparency_page_passes_axe(page: Page, portal: str, language: str, public_records: Agreement) -> None:
    page.goto("/transparency/")
    switch_language(page, language)
    for path in [*PAGES, f"/transparency/agreements/{public_records.pk}/", "/transparency/log/?leaf_index=0"]:
        page.goto(path)
        expect(page.get_by_role("heading", level=1)).to_have_count(1)
        assert_accessible(page)


def check(page: Page, leaf: str) -> None:
    page.get_by_label("Leaf index").fill(leaf)
    page.get_by_role("button", name="Check this entry").click()


@pytest.mark.django_db(transaction=True)
def test_the_browser_verifies_an_entry_itself_and_refuses_a_wrong_index(
    page: Page, portal: str, public_records: Agreement
) -> None:
    page.goto("/transparency/log/")
    result = page.locator("#proof-result")
    check(page, "0")
    expect(result).to_contain_text("Verified by your browser: entry 0 is in the log of")
    expect(result).to_contain_text("recomputed from the public event")
    assert page.url.endswith("/transparency/log/")  # proof.js checked it; the form never went to the server
    assert result.get_attribute("data-checked-by") == "browser"

    last = page.locator("#checkpoint-size").inner_text()
    check(page, str(int(last) - 1))  # the citizen's entry: only its hash is public
    expect(result).to_contain_text(f"Verified by your browser: entry {int(last) - 1} ")
    expect(result).to_contain_text("only its hash is public")

    check(page, last)  # one past the end
    expect(result).to_contain_text("Not verified: the signed log has no entry at this position.")
    expect(result.locator("p.error")).to_be_visible()
    assert_accessible(page)


@pytest.mark.django_db(transaction=True)
def test_the_browser_refuses_a_proof_that_does_not_lead_to_the_signed_root(
    page: Page, portal: str, public_records: Agreement
) -> None:
    page.goto("/transparency/log/")

    def tamper(route):  # type: ignore[no-untyped-def]
        response = route.fetch()
        body = response.json()
        body["audit_path"][0] = "A" * 43 + "="
        route.fulfill(response=response, json=body)

    page.route("**/api/v1/audit/proofs/inclusion*", tamper)
    check(page, "0")
    expect(page.locator("#proof-result")).to_contain_text(
        "Not verified: the inclusion proof does not lead to the signed root hash."
    )


@pytest.mark.django_db(transaction=True)
def test_without_javascript_the_server_checks_the_entry(browser, portal: str, public_records: Agreement) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(base_url=portal, locale="en-GB", java_script_enabled=False)
    page = context.new_page()
    page.goto("/transparency/log/")
    check(page, "0")
    expect(page.locator("#proof-result")).to_contain_text("Verified by Tiers' server: entry 0 is in the signed log")
    assert "leaf_index=0" in page.url
    context.close()
