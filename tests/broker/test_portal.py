"""Portal pages of the trust core: login, language, organisation pages."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.factories import PASSWORD, MembershipFactory


@pytest.mark.django_db
def test_login_page_has_username_and_password_fields_and_no_language_prefix() -> None:
    response = Client().get("/accounts/login/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="username"' in html
    assert 'name="password"' in html
    assert 'name="csrfmiddlewaretoken"' in html


def test_citizen_logs_in_with_username_and_password(alice) -> None:  # type: ignore[no-untyped-def]
    client = Client(enforce_csrf_checks=True)
    page = client.get("/accounts/login/")
    token = page.cookies["csrftoken"].value
    response = client.post(
        "/accounts/login/", {"username": "alice", "password": PASSWORD, "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302
    assert client.get("/me/").status_code == 200


def test_wrong_password_is_refused_with_a_helpful_message(alice) -> None:  # type: ignore[no-untyped-def]
    response = Client().post("/accounts/login/", {"username": "alice", "password": "wrong"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
    assert "_auth_user_id" not in Client().session


def test_language_switcher_turns_the_portal_french(alice) -> None:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(alice)
    client.post("/i18n/setlang/", {"language": "fr", "next": "/me/"})
    html = client.get("/me/").content.decode()
    assert '<html lang="fr">' in html
    assert "Bonjour" in html


def test_browser_language_is_honoured_without_a_prefix() -> None:
    html = Client(HTTP_ACCEPT_LANGUAGE="fr").get("/accounts/login/").content.decode()
    assert "Se connecter" in html


def test_member_reaches_their_organisation_page(holder_admin, holder) -> None:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(holder_admin)
    response = client.get(f"/org/{holder.slug}/")
    assert response.status_code == 200
    assert holder.contact_email in response.content.decode()


def test_member_of_another_organisation_gets_not_found(user_admin, holder) -> None:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user_admin)
    response = client.get(f"/org/{holder.slug}/")
    assert response.status_code == 404
    assert holder.contact_email not in response.content.decode()


@pytest.mark.parametrize("persona", ["alice", "stranger"])
def test_citizens_and_strangers_cannot_reach_organisation_pages(request, persona, holder) -> None:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(request.getfixturevalue(persona))
    assert client.get(f"/org/{holder.slug}/").status_code == 404
    assert client.get("/org/").content.decode().count(holder.slug) == 0


def test_anonymous_visitor_is_sent_to_login(holder) -> None:  # type: ignore[no-untyped-def]
    response = Client().get(f"/org/{holder.slug}/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_organisation_member_who_is_not_a_citizen_has_no_citizen_dashboard(holder_admin) -> None:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(holder_admin)
    assert client.get("/me/").status_code == 404


def test_member_with_one_organisation_goes_straight_to_it(holder) -> None:  # type: ignore[no-untyped-def]
    member = MembershipFactory(organisation=holder).user
    client = Client()
    client.force_login(member)
    response = client.get("/org/")
    assert response.status_code == 302
    assert response["Location"] == f"/org/{holder.slug}/"
