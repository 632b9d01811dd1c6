"""A holder's consent modules in its organisation pages: listed, previewed and published like the API does."""

from __future__ import annotations

import html
import json
from typing import Any

import pytest
from django.test import Client

from broker.models import AuditBody, Membership, Organisation, User
from consent import services
from consent.models import ConsentModule
from tests.conftest import client_for
from tests.consent.conftest import MODULE_CONTENT
from tests.factories import MembershipFactory

LIST = "/org/volta/consent-modules/"
NEW = "/org/volta/consent-modules/new"
FORM = {
    "slug": "mobility",
    "title_en": "Your trips, for better public transport",
    "title_fr": "Vos trajets, pour de meilleurs transports publics",
    "notice_en": "We share your trips under a pseudonym.",
    "notice_fr": "Nous partageons vos trajets sous un pseudonyme.",
    "risks_en": "",
    "risks_fr": "",
    "data_categories": "dpv-pd:Location, dpv-pd:TravelHistory",
    "purposes": ["dpv:NonCommercialResearch", "dpv:PublicBenefit"],
    "recipient_categories": ["public-authority", "research-body"],
    "duration_days": "365",
    "jurisdiction": "",
}


def browser(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def published_entries() -> list[dict[str, Any]]:
    return [json.loads(bytes(body.canonical)) for body in AuditBody.objects.filter(verb="consent_module.published")]


@pytest.fixture
def steward(holder: Organisation) -> User:
    return MembershipFactory(user__username="stan", organisation=holder, role=Membership.Role.DATA_STEWARD).user


@pytest.fixture
def reviewer(holder: Organisation) -> User:
    return MembershipFactory(user__username="rita", organisation=holder, role=Membership.Role.REVIEWER).user


def test_an_admin_publishes_a_module_through_the_page(holder: Organisation, holder_admin: User) -> None:
    response = browser(holder_admin).post(NEW, FORM)
    assert response.status_code == 302, response.content[:2000]
    assert response["Location"] == LIST
    module = ConsentModule.objects.get(holder=holder, slug="mobility")
    assert module.version == 1
    assert module.data_categories == ["dpv-pd:Location", "dpv-pd:TravelHistory"]
    assert module.purposes == FORM["purposes"]
    assert module.recipient_categories == FORM["recipient_categories"]
    assert (module.duration_days, module.jurisdiction, module.risks_en) == (365, "EU", "")
    (entry,) = published_entries()
    assert entry["details"] == {"module": "mobility", "version": 1, "sha256": module.notice_hash}
    assert entry["actor"] == f"user:{holder_admin.pk}"


def test_the_page_publishes_exactly_what_the_api_would(holder: Organisation, holder_admin: User) -> None:
    """Same fields, same service: the same content gives the same version and the same fingerprint."""
    browser(holder_admin).post(NEW, FORM)
    body = {**FORM, "slug": "mobility-api", "data_categories": ["dpv-pd:Location", "dpv-pd:TravelHistory"]}
    del body["risks_en"], body["risks_fr"], body["jurisdiction"]
    api = client_for(holder_admin).post("/api/v1/consent-modules/", body, format="json")
    assert api.status_code == 201, api.content
    assert api.json()["notice_hash"] == ConsentModule.objects.get(slug="mobility").notice_hash


def test_a_new_version_keeps_the_old_one_and_follows_it(
    holder: Organisation, holder_admin: User, module: ConsentModule
) -> None:
    client = browser(holder_admin)
    prefilled = client.get(f"{NEW}?module=energy")
    assert prefilled.status_code == 200
    form = prefilled.context["form"]
    assert form["slug"].value() == "energy"
    assert form["notice_fr"].value() == MODULE_CONTENT["notice_fr"]
    assert form["purposes"].value() == MODULE_CONTENT["purposes"]  # outside the vocabulary, still offered

    changed = {name: form[name].value() for name in form.fields} | {"duration_days": "180"}
    assert client.post(NEW, changed).status_code == 302
    old, new = ConsentModule.objects.filter(holder=holder, slug="energy").order_by("version")
    assert (old.pk, old.version, new.version) == (module.pk, 1, 2)
    assert old.retired_at == new.published_at
    assert (old.duration_days, new.duration_days) == (365, 180)
    assert [e["details"]["version"] for e in published_entries()] == [1, 2]

    listing = client.get(LIST).content.decode()
    assert f"/org/volta/consent-modules/{old.pk}/" in listing
    assert f"/org/volta/consent-modules/{new.pk}/" in listing
    assert "replaced on" in listing


def test_publishing_the_same_text_again_changes_nothing(holder_admin: User, module: ConsentModule) -> None:
    client = browser(holder_admin)
    form = client.get(f"{NEW}?module=energy").context["form"]
    response = client.post(NEW, {name: form[name].value() for name in form.fields}, follow=True)
    assert "Nothing changed" in response.content.decode()
    assert ConsentModule.objects.filter(slug="energy").count() == 1
    assert len(published_entries()) == 1


BAD = FORM | {
    "slug": "not a slug!",
    "title_en": "",
    "data_categories": "dpv-pd:Location, " + "x" * 101,
    "purposes": [],
    "duration_days": "0",
    "jurisdiction": "EUROPEAN-UNION",
}


def test_bad_input_gives_the_api_s_messages_next_to_each_field_and_creates_nothing(holder_admin: User) -> None:
    body = {**BAD, "data_categories": ["dpv-pd:Location", "x" * 101]}
    del body["risks_en"], body["risks_fr"]  # left empty on the page: absent, as the API allows
    api = client_for(holder_admin).post("/api/v1/consent-modules/", body, format="json")
    assert api.status_code == 400
    expected: dict[str, list[str]] = {}
    for problem in api.json()["errors"]:
        expected.setdefault(problem["field"].split(".")[0], []).append(problem["detail"])

    response = browser(holder_admin).post(NEW, BAD)
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert set(errors) == set(expected) == {
        "slug", "title_en", "data_categories", "purposes", "duration_days", "jurisdiction",
    }  # fmt: skip
    for field, details in expected.items():
        shown = [message.split("”: ", 1)[-1] for message in errors[field]]
        assert shown == details, field
    assert errors["data_categories"][0].startswith(f"“{'x' * 101}”: ")
    page = html.unescape(response.content.decode())
    assert 'href="#id_title_en"' in page  # the summary links each message to its field
    assert all(detail in page for details in expected.values() for detail in details)
    assert not ConsentModule.objects.exists()
    assert not published_entries()


def test_the_messages_are_in_french_for_a_french_reader(holder_admin: User) -> None:
    client = browser(holder_admin)
    client.cookies["django_language"] = "fr"
    response = client.post(NEW, BAD)
    assert "Ce champ ne peut être vide." in html.unescape(response.content.decode())
    assert not ConsentModule.objects.exists()


def test_a_data_steward_publishes_too(steward: User) -> None:
    assert browser(steward).post(NEW, FORM).status_code == 302
    assert ConsentModule.objects.filter(slug="mobility").exists()


@pytest.mark.parametrize("who", ["reviewer", "operator"])
def test_a_member_who_may_not_publish_sees_the_modules_but_is_refused_the_form(
    request: pytest.FixtureRequest, module: ConsentModule, who: str
) -> None:
    client = browser(request.getfixturevalue(who))
    assert client.get(LIST).status_code == 200
    assert client.get(f"/org/volta/consent-modules/{module.pk}/").status_code == 200
    assert client.get(NEW).status_code == 403
    assert client.post(NEW, FORM).status_code == 403
    assert not ConsentModule.objects.filter(slug="mobility").exists()


def test_a_data_user_publishes_no_module(data_user: Organisation, user_admin: User) -> None:
    client = browser(user_admin)
    assert "Only data holders publish consent modules." in client.get("/org/marlieux/consent-modules/").content.decode()
    assert client.post("/org/marlieux/consent-modules/new", FORM).status_code == 403
    assert not ConsentModule.objects.exists()


@pytest.mark.parametrize("who", ["user_admin", "alice", "stranger"])
def test_another_organisation_s_member_a_citizen_and_a_stranger_are_told_nothing_exists(
    request: pytest.FixtureRequest, module: ConsentModule, who: str
) -> None:
    client = browser(request.getfixturevalue(who))
    for url in (LIST, NEW, f"/org/volta/consent-modules/{module.pk}/"):
        assert client.get(url).status_code == 404, url
    assert client.post(NEW, FORM).status_code == 404
    assert not ConsentModule.objects.filter(slug="mobility").exists()


def test_another_holder_s_module_is_not_found_under_this_holder(holder_admin: User, module: ConsentModule) -> None:
    other = Organisation.objects.create(
        slug="ligne", name="Ligne Bleue", kind=Organisation.Kind.HOLDER, legal_identifier="1", country="FR"
    )
    theirs = services.module_publish(actor="system", holder=other, slug="energy", content=MODULE_CONTENT)
    assert browser(holder_admin).get(f"/org/volta/consent-modules/{theirs.pk}/").status_code == 404


def test_an_anonymous_visitor_is_sent_to_log_in(module: ConsentModule) -> None:
    response = Client().get(LIST)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_the_preview_is_the_citizens_form_with_nothing_to_tick(holder_admin: User, module: ConsentModule) -> None:
    page = html.unescape(browser(holder_admin).get(f"/org/volta/consent-modules/{module.pk}/").content.decode())
    assert MODULE_CONTENT["notice_en"] in page
    assert MODULE_CONTENT["risks_en"] in page
    assert "365 days from the day you agree" in page
    assert page.count('name="purposes"') == 2
    assert page.count("disabled") >= 3  # both boxes and the button
    assert 'method="post"' not in page.split("<main", 1)[1]


def test_publishing_without_the_csrf_token_is_refused_and_creates_nothing(holder_admin: User) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(holder_admin)
    response = client.post(NEW, FORM)
    assert response.status_code == 403
    assert b"CSRF" in response.content
    assert not ConsentModule.objects.exists()
    assert not published_entries()
