"""What every API module shares: pagination, content negotiation and the public-read permission."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any, TypeVar

from django.core.validators import RegexValidator
from django.db.models import Model, QuerySet
from django.utils.translation import gettext_lazy as _
from drf_spectacular.authentication import SessionScheme
from rest_framework import exceptions, negotiation, pagination, serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request

from broker import selectors
from broker.errors import Forbidden, InvalidInput
from broker.models import Organisation, User
from broker.oauth.tokens import Caller, ClientPrincipal


class CursorPagination(pagination.CursorPagination):
    """Stable pages over growing tables: a cursor, not an offset."""

    ordering = "-pk"
    page_size_query_param = "page_size"
    max_page_size = 200

    def get_page_size(self, request: Request) -> int | None:
        """The page size asked for, from 1 to 200; anything else is refused rather than ignored."""
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not raw.isdigit() or not 1 <= int(raw) <= self.max_page_size:
            raise InvalidInput(f"page_size is a whole number from 1 to {self.max_page_size}.")
        return int(raw)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters: list[dict[str, Any]] = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] |= {"minimum": 1, "maximum": self.max_page_size}
        return parameters


class ContentNegotiation(negotiation.DefaultContentNegotiation):
    """DRF's, except that a `?format=` names one of the view's formats: empty, it is refused like an unknown one.

    DRF ignores an empty `format` and answers its default representation, so a link that lost its value
    would silently get another format than it asked for.
    """

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> Any:
        renderers = list(renderers)
        offered = {renderer.format for renderer in renderers}
        asked = format_suffix or request.query_params.get(self.settings.URL_FORMAT_OVERRIDE)
        if asked is not None and asked not in offered:
            listed = ", ".join(sorted(offered))
            raise exceptions.NotFound(f"format={asked!r} is not offered here; ask for one of: {listed}.")
        return super().select_renderer(request, renderers, format_suffix)


# An http or https URL: a host name or address, an optional port, then path, query and fragment in
# RFC 3986's characters. One expression, checked here and published in the schema as is (ECMA-262 syntax).
WEB_URL = (
    r"^https?://[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,5})?"
    r"(?:[/?#][A-Za-z0-9._~:/?#@!$&'()*+,;=%-]*)?$"
)


class WebUrlField(serializers.CharField):
    """A URL Tiers may call or link to: exactly what WEB_URL matches, which the schema shows."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 200)
        super().__init__(**kwargs)
        self.validators.append(RegexValidator(WEB_URL, message=_("Enter an http or https URL.")))


def refuse_numbers_as_text() -> None:
    """Make DRF's CharField, and every field built on it, refuse a JSON value that is not a string.

    DRF reads `42` as `"42"` where text is expected; the schema says string, and a client that sends a
    number there has a bug worth telling it about (a 400 naming the field). Called once, from
    BrokerConfig.ready(); calling it again changes nothing.
    """
    drf_reading = serializers.CharField.to_internal_value
    if getattr(drf_reading, "text_only", False):
        return

    def text_only(field: serializers.CharField, data: Any) -> str:
        if not isinstance(data, str):
            field.fail("invalid")
        return drf_reading(field, data)

    text_only.text_only = True  # type: ignore[attr-defined]
    serializers.CharField.to_internal_value = text_only  # type: ignore[method-assign,assignment]


class PortalSessionAuthentication(SessionAuthentication):
    """The portal's session, for API views only a logged-in person may use: 401 (not 403) to anyone else."""

    def authenticate_header(self, request: Request) -> str | None:
        if request.META.get("HTTP_AUTHORIZATION"):
            return None  # a client's token: the caller is known, and this is for people (403)
        return 'Session realm="Tiers portal: log in at /accounts/login/"'


def acting_user(request: Request) -> User:
    """The logged-in user behind a request that passed IsAuthenticated."""
    user = request.user
    if isinstance(user, ClientPrincipal):
        raise Forbidden("A person does this, not an OAuth client.")
    if not isinstance(user, User):
        raise exceptions.NotAuthenticated()
    return user


def calling_organisation(request: Request) -> Organisation:
    """The organisation behind the request: an OAuth client's, or the one a member acts for."""
    if isinstance(request.auth, Caller):
        return request.auth.organisation
    return selectors.organisation_for_caller(request.user, request.query_params.get("organisation"))


def uuid_or_none(value: object) -> uuid.UUID | None:
    """The UUID a caller gave, or None for anything that is not one (so lookups answer not found)."""
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


M = TypeVar("M", bound=Model)


def by_id(queryset: QuerySet[M], raw_id: object) -> M | None:
    """The row of the queryset with this UUID, or None (also for anything that is not a UUID)."""
    wanted = uuid_or_none(raw_id)
    return queryset.filter(pk=wanted).first() if wanted else None


class PortalSessionScheme(SessionScheme):
    """The OpenAPI schema names the portal session as Django's session cookie."""

    target_class = "broker.api_base.PortalSessionAuthentication"
