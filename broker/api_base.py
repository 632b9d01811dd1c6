"""What every API module shares: pagination and the public-read permission."""

from __future__ import annotations

import uuid
from typing import TypeVar

from django.db.models import Model, QuerySet
from rest_framework import exceptions, pagination
from rest_framework.request import Request

from broker import selectors
from broker.models import Organisation, User
from broker.oauth.tokens import Caller


class CursorPagination(pagination.CursorPagination):
    """Stable pages over growing tables: a cursor, not an offset."""

    ordering = "-pk"
    page_size_query_param = "page_size"
    max_page_size = 200


def acting_user(request: Request) -> User:
    """The logged-in user behind a request that passed IsAuthenticated."""
    user = request.user
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
