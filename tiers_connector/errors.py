"""What the connector raises: a token refused, or Tiers answering with an error."""

from __future__ import annotations

from typing import Any


class ConnectorError(Exception):
    """Base of everything the connector raises."""


class InvalidToken(ConnectorError):
    """The data user's token is not one this API accepts; `reason` says why (log it, do not show it)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TiersError(ConnectorError):
    """Tiers refused a call: the HTTP status and the RFC 9457 problem document (or OAuth error) it sent."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        title = problem.get("title") or problem.get("error") or "error"
        detail = problem.get("detail") or problem.get("error_description") or ""
        super().__init__(f"Tiers answered {status}: {title}" + (f": {detail}" if detail else ""))

    @property
    def detail(self) -> str:
        return str(self.problem.get("detail") or self.problem.get("error_description") or "")


class TiersUnavailable(TiersError):
    """Tiers could not be reached, or did not answer in time (treat as 503: try again later)."""

    def __init__(self, what: str, cause: Exception) -> None:
        super().__init__(503, {"title": "Tiers is unavailable", "detail": f"{what}: {type(cause).__name__}: {cause}"})
