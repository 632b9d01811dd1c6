"""The OpenAPI schema's shared parts: every operation documents the problem+json refusals it can give."""

from __future__ import annotations

from typing import Any

PROBLEM: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details; some problems add members (violations, errors, checks).",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
    },
    "required": ["type", "title", "status"],
    "additionalProperties": True,
}

REFUSALS = {
    "400": "The request is malformed.",
    "401": "No valid credentials: log in, or send a live access token.",
    "403": "The caller is known but may not do this.",
    "404": "No such object for this caller (also what objects the caller may not see answer).",
    "409": "The request conflicts with the object's current state.",
    "422": "The request breaks a rule; the problem names it.",
    "429": "Too many requests; see Retry-After.",
}
BODY_REFUSALS = {
    "413": "The request body is larger than Tiers accepts.",
    "415": "The request body's media type is not one this operation reads.",
}


def add_problem_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: document the problem+json refusals on every operation."""
    result.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            refusals = {**REFUSALS, **(BODY_REFUSALS if method in ("post", "put", "patch") else {})}
            for status, description in refusals.items():
                operation["responses"].setdefault(status, {"description": description, "content": problem})
    return result
