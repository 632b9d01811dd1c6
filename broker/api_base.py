"""What every API module shares: pagination and the public-read permission."""

from __future__ import annotations

import uuid
from typing import TypeVar

from django.db.models import Model, QuerySet
from drf_spectacular.authentication import SessionScheme
from rest_framework import exceptions, pagination
from rest_framework.authentication import SessionAuthentication
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
