"""The sharing pages of organisations and the citizen's "who used my data", checked with axe-core."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from broker.models import Organisation, User
from sharing import delivery
from sharing.models import Agreement, Dataset
from tests.browser.conftest import assert_accessible, log_in, switch_language
from tests.sharing.conftest import RESEARCH, agreement, consent_to, grant_for, link, module, trips, trips_csv, upload

__all__ = ["agreement", "module", "trips"]  # fixtures used below

LANGUAGES = ["en", "fr"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("language", LANGUAGES)
def test_a_holder_s_sharing_pages_pass_axe(
    page: Page,
    portal: str,
    language: str,
    holder: Organisation,
    holder_admin: User,
    agreement: Agreement,
    trips: Dataset,
) -> None:
    upload(holder_admin, trips, trips_csv([("T-1", "2026-03-01", "Gare", "Campus", 1), ("T-2", "nope", "A", "B", 1)]))
    page.goto("/accounts/login/")
    switch_language(page, language)
    log_in(page, holder_admin.username)
    for path in ("datasets/", f"datasets/{trips.pk}/", "datasets/new", "agreements/", f"agreements/{agreement.pk}/",
                 "agreements/new", "reviews/", "grants/"):  # fmt: skip
        page.goto(f"/org/{holder.slug}/{path}")
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        assert_accessible(page)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("language", LANGUAGES)
def test_a_data_user_s_pages_and_a_citizen_s_uses_pass_axe(
    page: Page, portal: str, language: str, holder: Organisation, holder_admin: User, agreement: Agreement,
    trips: Dataset, module: object, data_user: Organisation, user_admin: User, alice: User,
) -> None:  # fmt: skip
    upload(holder_admin, trips, trips_csv([("T-ALICE", "2026-03-01", "Gare", "Campus", 1)]))
    link(alice, holder, "T-ALICE")
    consent_to(alice, module, RESEARCH)  # type: ignore[arg-type]
    grant = grant_for(user_admin, data_user, trips)
    read = delivery.open_read(grant)
    page.goto("/accounts/login/")
    switch_language(page, language)
    log_in(page, user_admin.username)
    for path in ("requests/", "requests/new"):
        page.goto(f"/org/{data_user.slug}/{path}")
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        assert_accessible(page)
    page.context.clear_cookies()
    page.goto("/accounts/login/")
    switch_language(page, language)
    log_in(page, alice.username)
    page.goto("/me/accesses/")
    expect(page.get_by_role("cell", name=data_user.name)).to_be_visible()
    assert_accessible(page)
    page.goto(f"/me/accesses/{read.delivery.pk}/")
    expect(page.get_by_role("heading", level=1)).to_contain_text(data_user.name)
    assert_accessible(page)
