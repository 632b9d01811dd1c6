"""Celery tasks of data sharing: thin, each calls one scheduled job and returns its count."""

from __future__ import annotations

from celery import shared_task

from sharing import expiry, retention


@shared_task
def grants_expire() -> int:
    """Expire the grants whose period has ended."""
    return expiry.grants_expire_due()


@shared_task
def vault_purge() -> int:
    """Delete the records and shred the keys of withdrawn datasets no grant reads any more."""
    return retention.vault_purge_due()


@shared_task
def delivery_logs_purge() -> int:
    """Delete who-was-included rows of deliveries past their retention."""
    return retention.delivery_logs_purge_due()
