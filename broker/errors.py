"""The one family of domain errors; broker.problems maps each to problem+json."""

from __future__ import annotations

from typing import Any


class TiersError(Exception):
    """A refusal the caller can act on: it carries an HTTP status and a stable type slug."""

    status = 400
    slug = "bad-request"
    title = "The request cannot be carried out."

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extensions = extensions


class InvalidInput(TiersError):
    status = 422
    slug = "invalid-input"
    title = "The request breaks a rule."


class NotFound(TiersError):
    """Also raised for objects the caller may not see, so their existence does not leak."""

    status = 404
    slug = "not-found"
    title = "Not found."


class Forbidden(TiersError):
    status = 403
    slug = "forbidden"
    title = "You may not do this."


class Conflict(TiersError):
    status = 409
    slug = "conflict"
    title = "The request conflicts with the current state."
