"""Celery tasks of the consent app: thin, each calls one scheduled job and returns its count."""

from __future__ import annotations

from celery import shared_task

from consent import expiry, notifications


@shared_task
def consents_expire() -> int:
    """Expire the consents whose term has passed."""
    return expiry.consents_expire_due()


@shared_task
def consent_reminders_send() -> int:
    """Remind citizens of their consents that expire soon."""
    return notifications.expiry_reminders_send()


@shared_task
def digests_send() -> int:
    """Send the citizens whose digest is due a digest of the uses of their data."""
    return notifications.digests_send()
