"""The vault's keys: a data key per dataset for records, a pseudonym key per reading organisation.

Both are random 256-bit keys wrapped by TIERS_KEK (broker.keys.seal), each bound
by its associated data to the row that holds it. A record's payload is
AES-256-GCM under its dataset's data key, with the dataset id and the subject
reference as associated data, so a payload moved to another row or subject no
longer opens.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
import uuid
from collections.abc import Iterable

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.db import IntegrityError, transaction

from broker.keys import seal, unseal
from broker.models import Organisation
from sharing.models import DataKey, Dataset, PseudonymKey

NONCE_BYTES = 12
KEY_BYTES = 32
PSEUDONYM_BYTES = 16  # 128 bits: no collisions in practice, short enough to read

# Unwrapped keys by (dataset, version) and by organisation. A version names one key forever,
# so an entry never goes stale; rotation adds a version.
_data_keys: dict[tuple[str, int], AESGCM] = {}
_pseudonym_keys: dict[int, bytes] = {}
_lock = threading.Lock()


def forget_keys() -> None:
    """Drop the unwrapped keys this process holds (tests)."""
    with _lock:
        _data_keys.clear()
        _pseudonym_keys.clear()


def data_key_aad(dataset_id: object, version: int) -> bytes:
    return f"tiers data key {dataset_id} v{version}".encode()


def data_key_create(dataset: Dataset) -> DataKey:
    """Add the next data key version of a dataset (in the caller's transaction)."""
    latest = DataKey.objects.filter(dataset=dataset).order_by("-version").values_list("version", flat=True).first()
    version = (latest or 0) + 1
    wrapped = seal(os.urandom(KEY_BYTES), aad=data_key_aad(dataset.pk, version))
    return DataKey.objects.create(dataset=dataset, version=version, wrapped_key=wrapped)


def current_version(dataset: Dataset) -> int:
    """The data key version new records are written with."""
    version = DataKey.objects.filter(dataset=dataset).order_by("-version").values_list("version", flat=True).first()
    if version is None:
        raise LookupError(f"dataset {dataset.pk} has no data key")
    return version


def cipher(dataset_id: uuid.UUID | str, version: int) -> AESGCM:
    """The AES-GCM cipher of one data key version."""
    cache_key = (str(dataset_id), version)
    found = _data_keys.get(cache_key)
    if found is None:
        wrapped = DataKey.objects.values_list("wrapped_key", flat=True).get(dataset_id=dataset_id, version=version)
        found = AESGCM(unseal(bytes(wrapped), aad=data_key_aad(dataset_id, version)))
        with _lock:
            _data_keys[cache_key] = found
    return found


def record_aad(dataset_id: object, subject_ref: str) -> bytes:
    return f"{dataset_id}\x00{subject_ref}".encode()


def encrypt_payload(aead: AESGCM, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + aead.encrypt(nonce, plaintext, aad)


def decrypt_payload(aead: AESGCM, sealed: bytes, aad: bytes) -> bytes:
    return aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], aad)


# --- pseudonyms ----------------------------------------------------------------------------------


def pseudonym_aad(organisation_id: int) -> bytes:
    return f"tiers pseudonym key {organisation_id}".encode()


def pseudonym_key(organisation: Organisation | int) -> bytes:
    """The reading organisation's pseudonym secret, created on first use."""
    organisation_id = organisation if isinstance(organisation, int) else organisation.pk
    found = _pseudonym_keys.get(organisation_id)
    if found is not None:
        return found
    row = PseudonymKey.objects.filter(organisation_id=organisation_id).first()
    if row is None:
        try:
            with transaction.atomic():
                row = PseudonymKey.objects.create(
                    organisation_id=organisation_id,
                    wrapped_key=seal(os.urandom(KEY_BYTES), aad=pseudonym_aad(organisation_id)),
                )
        except IntegrityError:  # another process created it first
            row = PseudonymKey.objects.get(organisation_id=organisation_id)
    secret = unseal(bytes(row.wrapped_key), aad=pseudonym_aad(organisation_id))
    with _lock:
        _pseudonym_keys[organisation_id] = secret
    return secret


def pseudonym(secret: bytes, holder_id: int, subject_ref: str) -> str:
    """A subject's pseudonym for one reading organisation: HMAC-SHA-256, its first 128 bits in hex.

    Stable for that organisation, unrelated across organisations (each has its own
    secret), and not reversible without Tiers' records of who was included.
    """
    return hmac.digest(secret, f"{holder_id}\x00{subject_ref}".encode(), "sha256")[:PSEUDONYM_BYTES].hex()


def subjects_digest(pseudonyms: Iterable[str]) -> str:
    """SHA-256 over the sorted pseudonyms, one per line: what an audit entry says was included."""
    digest = hashlib.sha256()
    for name in sorted(pseudonyms):
        digest.update(name.encode() + b"\n")
    return digest.hexdigest()
