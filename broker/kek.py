"""Changing the key-encryption key: every sealed key re-sealed under TIERS_KEK, in one transaction.

Each sealed column is listed with the associated data its rows were sealed
with. A row that already opens under TIERS_KEK is left alone, so the command
can run again after an interruption; a row that opens under neither key stops
everything (nothing is half re-wrapped).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from django.conf import settings
from django.db import models, transaction

from broker import audit, keys
from broker.models import SigningKey
from broker.security import idempotency, totp
from broker.security.models import IdempotentResponse, TOTPDevice
from sharing import vault
from sharing.models import DataKey, PseudonymKey


@dataclass(frozen=True)
class SealedColumn:
    name: str
    model: type[models.Model]
    field: str
    aad: Callable[[Any], bytes]


COLUMNS = (
    SealedColumn("signing keys", SigningKey, "encrypted_private_key", lambda row: row.kid.encode("ascii")),
    SealedColumn("data keys", DataKey, "wrapped_key", lambda row: vault.data_key_aad(row.dataset_id, row.version)),
    SealedColumn("pseudonym keys", PseudonymKey, "wrapped_key", lambda row: vault.pseudonym_aad(row.organisation_id)),
    SealedColumn("TOTP secrets", TOTPDevice, "sealed_secret", lambda row: totp.aad_of(row.user)),
    SealedColumn("idempotent answers", IdempotentResponse, "body", lambda row: idempotency.aad_of(row.caller, row.key)),
)


class KekMismatch(Exception):
    """A sealed value opens under neither the current nor the previous KEK."""


def rewrap(*, previous: bytes, actor: str = "system") -> dict[str, int]:
    """Re-seal under TIERS_KEK everything sealed under `previous`; returns how many rows per column."""
    moved: dict[str, int] = {}
    with transaction.atomic():
        for column in COLUMNS:
            moved[column.name] = 0
            for row in column.model.objects.select_for_update().all():  # type: ignore[attr-defined]
                sealed = bytes(getattr(row, column.field) or b"")
                if not sealed:
                    continue  # shredded (a purged dataset's data key)
                aad = column.aad(row)
                try:
                    keys.unseal(sealed, aad=aad, kek=settings.TIERS_KEK)
                    continue  # already under TIERS_KEK
                except InvalidTag:
                    pass
                try:
                    plaintext = keys.unseal(sealed, aad=aad, kek=previous)
                except InvalidTag as exc:
                    raise KekMismatch(f"a row of {column.name} ({row.pk}) opens under neither KEK") from exc
                setattr(row, column.field, keys.seal(plaintext, aad=aad))
                row.save(update_fields=[column.field])
                moved[column.name] += 1
        audit.record(verb="kek.rewrapped", actor=actor, subject="kek", details=moved)
    keys.forget_cached_keys()
    vault.forget_keys()
    return moved
