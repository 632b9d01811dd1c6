"""Changing TIERS_KEK: every sealed key still opens afterwards, and a wrong old KEK changes nothing."""

from __future__ import annotations

import base64
import io
import json
import os
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from broker import keys
from broker.models import AuditBody, Organisation, SigningKey, User
from broker.security import totp
from sharing import delivery, vault
from sharing.models import Agreement, DataKey, Dataset
from tests.sharing.conftest import RESEARCH, agreement, consent_to, grant_for, link, module, trips, trips_csv, upload

__all__ = ["agreement", "module", "trips"]  # fixtures used below

pytestmark = pytest.mark.django_db

NEW_KEK = os.urandom(32)


def read(grant: Any) -> list[str]:
    return sorted(b"".join(delivery.stream_jsonl(delivery.open_read(grant))).decode().splitlines())


def test_rewrap_moves_every_sealed_key_to_the_new_kek(
    settings: Any, holder_admin: User, trips: Dataset, agreement: Agreement, module: Any, holder: Organisation,
    alice: User, user_admin: User, data_user: Organisation,
) -> None:  # fmt: skip
    upload(holder_admin, trips, trips_csv([("T-ALICE", "2026-03-01", "Gare", "Campus", 4.5)]))
    link(alice, holder, "T-ALICE")
    consent_to(alice, module, RESEARCH)
    grant = grant_for(user_admin, data_user, trips)
    keys.sign_jws(b"{}")  # the signing key exists
    secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    device = totp.device_install(actor=None, user=holder_admin, secret=secret)
    before = read(grant)
    old = settings.TIERS_KEK

    settings.TIERS_KEK, settings.TIERS_KEK_PREVIOUS = NEW_KEK, old
    keys.forget_cached_keys()
    vault.forget_keys()
    assert read(grant) == before  # meanwhile, keys sealed under the old KEK still open
    out = io.StringIO()
    call_command("kek_rewrap", stdout=out)

    assert "Re-sealed under TIERS_KEK" in out.getvalue()
    assert read(grant) == before  # the same records and pseudonyms, their keys now under the new KEK
    for row in DataKey.objects.all():
        vault.cipher(row.dataset_id, row.version)  # opens under the new KEK
    for key in SigningKey.objects.all():
        keys.unseal(bytes(key.encrypted_private_key), aad=key.kid.encode("ascii"), kek=NEW_KEK)
    event = json.loads(AuditBody.objects.filter(verb="kek.rewrapped").get().canonical)
    assert event["details"]["data keys"] == 1
    assert event["details"]["signing keys"] >= 1
    device.refresh_from_db()
    assert totp.secret_of(device) == secret

    settings.TIERS_KEK_PREVIOUS = None  # the old KEK is gone: everything opens under the new one alone
    keys.forget_cached_keys()
    vault.forget_keys()
    assert read(grant) == before
    settings.TIERS_KEK_PREVIOUS = old
    call_command("kek_rewrap", stdout=io.StringIO())  # a second run finds everything done
    second = json.loads(AuditBody.objects.filter(verb="kek.rewrapped").order_by("-entry_id").first().canonical)
    assert set(second["details"].values()) == {0}


def test_a_wrong_previous_kek_changes_nothing(settings: Any, trips: Dataset) -> None:
    sealed_before = bytes(DataKey.objects.get(dataset=trips).wrapped_key)
    settings.TIERS_KEK, settings.TIERS_KEK_PREVIOUS = NEW_KEK, os.urandom(32)
    with pytest.raises(CommandError, match="opens under neither KEK"):
        call_command("kek_rewrap", stdout=io.StringIO())
    assert bytes(DataKey.objects.get(dataset=trips).wrapped_key) == sealed_before


def test_without_a_previous_kek_the_command_says_what_to_set(settings: Any) -> None:
    settings.TIERS_KEK_PREVIOUS = None
    with pytest.raises(CommandError, match="TIERS_KEK_PREVIOUS"):
        call_command("kek_rewrap")


def test_the_previous_kek_is_read_from_the_environment() -> None:
    from broker.settings import _kek

    value = base64.b64encode(NEW_KEK).decode()
    assert _kek(value) == NEW_KEK
