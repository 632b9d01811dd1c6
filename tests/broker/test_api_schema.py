"""The schema says what is well formed exactly as the API checks it (broker/api_schema.py, broker/api_base.py)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework import serializers
from rest_framework.test import APIClient

from broker.api_base import WEB_URL, WebUrlField
from broker.api_schema import NOT_BLANK

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return SchemaGenerator().get_schema(request=None, public=True)


def test_not_blank_is_exactly_what_python_does_not_strip() -> None:
    pattern = re.compile(NOT_BLANK)
    for code in range(0x110000):
        if 0xD800 <= code < 0xE000:
            continue  # lone surrogates are not text a JSON body can carry
        char = chr(code)
        assert bool(pattern.search(char)) == bool(char.strip()), f"U+{code:04X}"


def test_a_text_field_that_refuses_blanks_says_so_and_one_that_accepts_them_does_not(schema: dict) -> None:
    request = schema["components"]["schemas"]["LinkCodeRequestRequest"]["properties"]["subject_ref"]
    assert request["pattern"] == NOT_BLANK
    answer = schema["components"]["schemas"]["LinkCodeIssued"]["properties"]
    assert all(prop.get("pattern") != NOT_BLANK for prop in answer.values()), "responses are not constrained"


def test_a_field_with_its_own_pattern_keeps_it(schema: dict) -> None:
    content_hash = schema["components"]["schemas"]["SignatureRequest"]["properties"]["content_hash"]
    assert content_hash["pattern"] == "^[0-9a-f]{64}$"


@pytest.mark.parametrize(
    "url",
    ["https://holder.example/api", "http://127.0.0.1:8131/records?x=1#top", "https://xn--mairie-3ya.fr", "https://a"],
)
def test_web_urls_that_are_accepted(url: str) -> None:
    assert WebUrlField().run_validation(url) == url
    assert re.search(WEB_URL, url)


@pytest.mark.parametrize(
    "url",
    ["spdx:checksumValue", "ftp://holder.example", "http://", "https://-holder.example", "https://a b", "javascript:x"],
)
def test_web_urls_that_are_refused(url: str) -> None:
    with pytest.raises(serializers.ValidationError):
        WebUrlField().run_validation(url)
    assert not re.search(WEB_URL, url)


def test_a_web_url_that_may_be_blank_is_one_of_a_url_or_nothing(schema: dict) -> None:
    url, blank = schema["components"]["schemas"]["ClientRegistrationRequest"]["properties"]["jwks_uri"]["oneOf"]
    assert url["pattern"] == WEB_URL
    assert blank["maxLength"] == 0
    assert WebUrlField(allow_blank=True).run_validation("") == ""


def test_page_sizes_are_published_with_their_bounds(schema: dict) -> None:
    parameters = schema["paths"]["/api/v1/organisations/"]["get"]["parameters"]
    page_size = next(p for p in parameters if p["name"] == "page_size")
    assert page_size["schema"] == {"type": "integer", "minimum": 1, "maximum": 200}


@pytest.mark.django_db
@pytest.mark.parametrize("asked", ["", "xml", "JSON"])
def test_a_format_that_is_not_offered_is_refused_and_named(asked: str) -> None:
    response = APIClient().get("/api/v1/catalog", {"format": asked})
    assert response.status_code == 404
    assert response["Content-Type"].startswith(PROBLEM)
    assert response.json()["detail"] == f"format={asked!r} is not offered here; ask for one of: json, jsonld."


@pytest.mark.django_db
def test_an_offered_format_is_served() -> None:
    response = APIClient().get("/api/v1/catalog", {"format": "jsonld"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/ld+json")


@pytest.mark.django_db
@pytest.mark.parametrize("query", [{"subject": ""}, {"verb": " "}, {"since": ""}])
def test_a_filter_given_empty_is_refused_not_ignored(query: dict[str, str]) -> None:
    response = APIClient().get("/api/v1/audit/entries/", query)
    assert response.status_code == 400
    assert response["Content-Type"].startswith(PROBLEM)
    assert [error["field"] for error in response.json()["errors"]] == list(query)


@pytest.mark.parametrize("value", [0, 4.5, True, None, ["CUST-1"], {"ref": "CUST-1"}])
def test_text_fields_take_strings_only(value: object) -> None:
    field = serializers.CharField(allow_null=False)
    with pytest.raises(serializers.ValidationError):
        field.run_validation(value)
    with pytest.raises(serializers.ValidationError):
        serializers.SlugField().run_validation(value)
    assert field.run_validation(" CUST-1 ") == "CUST-1"


@pytest.mark.django_db
def test_a_number_sent_as_text_is_refused_by_the_api(holder_admin: Any) -> None:
    from tests.conftest import client_for

    response = client_for(holder_admin).post("/api/v1/link-codes/", {"subject_ref": 0}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == [{"field": "subject_ref", "detail": "Not a valid string."}]
