"""Frictionless Table Schemas: checking a dataset's schema, and reading one row against it."""

from __future__ import annotations

import datetime
import decimal
from collections.abc import Mapping
from typing import Any

from frictionless import FrictionlessException, Schema

from broker.errors import InvalidInput

MAX_FIELDS = 200
# A spreadsheet runs a cell starting with one of these as a formula (OWASP CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def checked_schema(descriptor: Any, *, subject_key_field: str, personal_fields: list[str]) -> Schema:
    """The schema, if it is a valid Table Schema that names the subject key and personal fields."""
    if not isinstance(descriptor, dict):
        raise InvalidInput("table_schema must be a Frictionless Table Schema object.")
    try:
        schema = Schema.from_descriptor(descriptor)
    except FrictionlessException as exc:
        raise InvalidInput(f"table_schema is not a valid Table Schema: {exc.error.message}") from exc
    names = schema.field_names
    if not names:
        raise InvalidInput("table_schema has no fields.")
    if len(names) > MAX_FIELDS:
        raise InvalidInput(f"table_schema has more than {MAX_FIELDS} fields.")
    if len(set(names)) != len(names):
        raise InvalidInput("table_schema names a field twice.")
    reserved = [name for name in names if name == "subject_pseudonym" or name[:1] in FORMULA_STARTS]
    if reserved:
        raise InvalidInput(
            f"Field names may not be subject_pseudonym (Tiers writes it) or start with = + - @: {', '.join(reserved)}."
        )
    if subject_key_field and subject_key_field not in names:
        raise InvalidInput(f"subject_key_field {subject_key_field!r} is not a field of the schema.")
    unknown = [name for name in personal_fields if name not in names]
    if unknown:
        raise InvalidInput(f"personal_fields names fields the schema lacks: {', '.join(unknown)}.")
    if personal_fields and not subject_key_field:
        raise InvalidInput("A dataset with personal fields names its subject_key_field.")
    return schema


class RowReader:
    """Reads raw rows (strings from CSV, values from JSON) into checked values, or says why not."""

    def __init__(self, descriptor: Mapping[str, Any]) -> None:
        self.schema = Schema.from_descriptor(dict(descriptor))
        self.fields = list(self.schema.fields)
        self.names = [field.name for field in self.fields]
        self._known = set(self.names)

    def read(self, raw: Mapping[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        """The row's values as JSON-ready types, and (field, reason) for each problem."""
        problems: list[tuple[str, str]] = []
        extra = [name for name in raw if name not in self._known]
        if extra:
            problems.append((extra[0], f"unknown field {extra[0]!r}"))
        values: dict[str, Any] = {}
        for field in self.fields:
            cell = raw.get(field.name)
            if cell == "":
                cell = None
            value, notes = field.read_cell(cell)
            if notes:
                problems.append((field.name, f"{field.name}: {'; '.join(sorted(notes.values()))}"))
                continue
            values[field.name] = _jsonable(value)
        return values, problems


def _jsonable(value: Any) -> Any:
    """Frictionless values as JSON: dates and times in ISO 8601, decimals as numbers."""
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list | dict | str | int | float | bool) or value is None:
        return value
    return str(value)
