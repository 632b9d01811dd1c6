"""The OpenAPI schema's shared parts: the problem+json refusals of every operation, and what text fields accept.

The schema says what is well formed exactly as the serializers check it, so that a client (or a
fuzzer) that follows the schema never meets a 400; what it can still meet is a domain rule's 422.
"""

from __future__ import annotations

from typing import Any

from django.core.validators import RegexValidator
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from rest_framework import serializers

# What str.strip() removes, which DRF's CharField trims before refusing a blank value. Python's
# whitespace is not ECMA-262's `\s` (it has \x1c-\x1f and \x85, not \ufeff), so it is spelled out.
_PYTHON_WHITESPACE = r"\t\n\u000b\u000c\r\u001c-\u001f \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NOT_BLANK = f"[^{_PYTHON_WHITESPACE}]"

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


class TextFieldSchema(OpenApiSerializerFieldExtension):
    """A text field that refuses blank input says so: one character at least that is not whitespace."""

    target_class = serializers.CharField
    match_subclasses = True

    def map_serializer_field(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        from broker.api_base import WEB_URL, WebUrlField

        schema: dict[str, Any] = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        field = self.target
        if isinstance(field, WebUrlField):
            return schema | {"pattern": WEB_URL}  # allow_blank adds a `oneOf` with the empty string
        if (
            direction == "request"
            and not field.read_only
            and not field.allow_blank
            and field.trim_whitespace
            and schema.get("type") == "string"
            and not {"pattern", "format", "enum"} & schema.keys()
            and not any(isinstance(validator, RegexValidator) for validator in field.validators)  # its own pattern
        ):
            schema["pattern"] = NOT_BLANK
        return schema
