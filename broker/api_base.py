"""What every API module shares: pagination and the public-read permission."""

from __future__ import annotations

from rest_framework import exceptions, pagination
from rest_framework.request import Request

from broker.models import User


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
