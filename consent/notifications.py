"""Mail to citizens from scheduled jobs: reminders before consents expire, digests of the uses of their data.

Each job decides in one transaction per citizen, locked with SKIP LOCKED, what is due; writes an
audit entry per consent reminded (`consent.reminder_sent`) or per digest (`citizen.digest_sent`,
with the period it covers), which is what the next run reads to stay idempotent; and emits an
outbox event. The outbox handler renders and sends the mail after the commit, in the citizen's
language, so no mail is sent inside a transaction and none is lost when the mail server is down.
See docs/jobs.md.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from broker import audit, outbox
from broker.models import AuditBody, OutboxEvent, User
from consent.forms import term_label
from consent.models import CitizenProfile, ConsentRecord
from sharing.models import DeliverySubject

REMINDER_VERB = "consent.reminder_sent"
REMINDER_TOPIC = "notifications.consent_reminder"
DIGEST_VERB = "citizen.digest_sent"
DIGEST_TOPIC = "notifications.citizen_digest"
# A delivery commits a moment after its time is taken; a digest stops this far before now so
# that no delivery can land in a period already sent.
DIGEST_SETTLE = datetime.timedelta(minutes=5)
# A daily run a little earlier than the day before still sends a weekly digest on its day.
DIGEST_TOLERANCE = datetime.timedelta(hours=1)
DIGEST_MAX_LINES = 100


def _reachable(prefix: str = "") -> Q:
    """Citizens mail may go to: active, with a confirmed address."""
    return Q(
        **{
            f"{prefix}is_active": True,
            f"{prefix}citizen_profile__awaiting_email_verification": False,
        }
    ) & ~Q(**{f"{prefix}email": ""})


def _lock_citizen(citizen_id: int) -> bool:
    """Hold the citizen's profile for this transaction; False if another run holds it."""
    held = CitizenProfile.objects.select_for_update(skip_locked=True).filter(user_id=citizen_id)
    return held.values_list("pk", flat=True).first() is not None


# --- reminders ---------------------------------------------------------------------------------


def _expiring(moment: datetime.datetime) -> Q:
    window = datetime.timedelta(days=settings.TIERS_CONSENT_REMINDER_DAYS)
    return Q(state__in=ConsentRecord.ACTIVE_STATES, expires_at__gt=moment, expires_at__lte=moment + window)


def _not_reminded(records: Iterable[ConsentRecord]) -> list[ConsentRecord]:
    """The records with no reminder since they were last given or renewed (that starts a new term)."""
    by_subject = {audit.subject_ref(record): record for record in records}
    sent = AuditBody.objects.filter(verb=REMINDER_VERB, subject__in=list(by_subject)).values_list(
        "subject", "entry__created_at"
    )
    reminded = {subject for subject, at in sent if at >= by_subject[subject].given_at}
    return [record for subject, record in by_subject.items() if subject not in reminded]


def expiry_reminders_send(now: datetime.datetime | None = None) -> int:
    """Remind each citizen, once per consent and term, of consents expiring soon; returns mails queued."""
    moment = now or timezone.now()
    citizens = (
        ConsentRecord.objects.filter(_expiring(moment))
        .filter(_reachable("citizen__"))
        .order_by("citizen_id")
        .values_list("citizen_id", flat=True)
        .distinct()
    )
    return sum(_remind(citizen_id, moment) for citizen_id in list(citizens))


def _remind(citizen_id: int, moment: datetime.datetime) -> int:
    with transaction.atomic():
        if not _lock_citizen(citizen_id):
            return 0
        due = _not_reminded(ConsentRecord.objects.filter(_expiring(moment), citizen_id=citizen_id))
        if not due:
            return 0
        for record in due:
            audit.record(
                verb=REMINDER_VERB,
                actor="system",
                subject=record,
                details={"days": settings.TIERS_CONSENT_REMINDER_DAYS},
                citizen=citizen_id,
            )
        outbox.emit(REMINDER_TOPIC, {"citizen": citizen_id, "consents": [str(record.pk) for record in due]})
        return 1


# --- digests -----------------------------------------------------------------------------------


def _last_digest_end(citizen_id: int) -> datetime.datetime | None:
    canonical = (
        AuditBody.objects.filter(verb=DIGEST_VERB, citizen_id=citizen_id)
        .order_by("-entry_id")
        .values_list("canonical", flat=True)
        .first()
    )
    if canonical is None:
        return None
    return datetime.datetime.fromisoformat(json.loads(bytes(canonical))["details"]["period_end"])


def digests_send(now: datetime.datetime | None = None, period_days: int = 7) -> int:
    """Send each citizen whose last digest is a period old a digest of the new uses of their data.

    Runs daily; a citizen gets at most one digest a period, and none when nothing new happened.
    The first digest covers the last period. Returns how many digests were queued.
    """
    until = (now or timezone.now()) - DIGEST_SETTLE
    period = datetime.timedelta(days=period_days)
    citizens = (
        DeliverySubject.objects.filter(_reachable("citizen__"), delivery__at__lte=until)
        .order_by("citizen_id")
        .values_list("citizen_id", flat=True)
        .distinct()
    )
    return sum(_digest(citizen_id, until, period) for citizen_id in list(citizens) if citizen_id is not None)


def _digest(citizen_id: int, until: datetime.datetime, period: datetime.timedelta) -> int:
    with transaction.atomic():
        if not _lock_citizen(citizen_id):
            return 0
        last = _last_digest_end(citizen_id)
        if last is not None and until - last < period - DIGEST_TOLERANCE:
            return 0
        since = last if last is not None else until - period
        if not _uses(citizen_id, since, until).exists():
            return 0  # nothing new: no mail, and the next run looks again from the same point
        span = {"period_start": since.isoformat(), "period_end": until.isoformat()}
        audit.record(verb=DIGEST_VERB, actor="system", subject=f"user:{citizen_id}", details=span, citizen=citizen_id)
        outbox.emit(DIGEST_TOPIC, {"citizen": citizen_id, **span})
        return 1


def _uses(citizen_id: int, since: datetime.datetime, until: datetime.datetime) -> Any:
    return DeliverySubject.objects.filter(citizen_id=citizen_id, delivery__at__gt=since, delivery__at__lte=until)


# --- the mails, sent by outbox handlers after the commit ------------------------------------------


def _recipient(citizen_id: int) -> tuple[User, str] | None:
    """The citizen and their language, if mail may still go to them."""
    user = User.objects.filter(_reachable(), pk=citizen_id).select_related("citizen_profile").first()
    if user is None:
        return None
    return user, user.citizen_profile.preferred_language


def _send(
    event: OutboxEvent, user: User, language: str, *, subject: str, template: str, context: Mapping[str, Any]
) -> None:
    context = {"name": user.citizen_profile.display_name or user.get_username(), **context}
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string(f"consent/email/{template}.txt", context),
        to=[user.email],
        # A second delivery of the same event carries the same id, so it can be dropped.
        headers={"X-Tiers-Event-Id": str(event.pk), "Content-Language": language},
    )
    message.attach_alternative(render_to_string(f"consent/email/{template}.html", context), "text/html")
    message.send()


@outbox.handler(REMINDER_TOPIC)
def send_reminder(event: OutboxEvent) -> None:
    """Mail the reminder; consents renewed, withdrawn or expired since it was queued are left out."""
    found = _recipient(int(event.payload["citizen"]))
    if found is None:
        return
    user, language = found
    records = (
        ConsentRecord.objects.filter(
            pk__in=event.payload["consents"],
            citizen=user,
            state__in=ConsentRecord.ACTIVE_STATES,
            given_at__lte=event.created_at,
        )
        .select_related("module", "holder")
        .order_by("expires_at")
    )
    if not records:
        return
    with translation.override(language):
        consents = [
            {
                "purpose": term_label(record.purpose),
                "title": record.module.title_fr if language == "fr" else record.module.title_en,
                "holder": record.holder.name,
                "expires_at": record.expires_at,
                "url": f"{settings.TIERS_BASE_URL}/me/consents/{record.pk}/",
            }
            for record in records
        ]
        _send(
            event,
            user,
            language,
            subject=_("Tiers: your consent expires soon") if len(consents) == 1 else _("Tiers: consents expire soon"),
            template="reminder",
            context={"consents": consents, "dashboard_url": f"{settings.TIERS_BASE_URL}/me/"},
        )


@outbox.handler(DIGEST_TOPIC)
def send_digest(event: OutboxEvent) -> None:
    """Mail the digest of the uses in its period, newest first."""
    found = _recipient(int(event.payload["citizen"]))
    if found is None:
        return
    user, language = found
    since = datetime.datetime.fromisoformat(event.payload["period_start"])
    until = datetime.datetime.fromisoformat(event.payload["period_end"])
    uses = _uses(user.pk, since, until).select_related(
        "delivery__grant__organisation", "delivery__grant__dataset__holder"
    )
    total = uses.count()
    if not total:
        return  # the rows were purged meanwhile: nothing left to tell
    with translation.override(language):
        lines = [
            {
                "organisation": use.delivery.grant.organisation.name,
                "dataset": use.delivery.grant.dataset.title,
                "holder": use.delivery.grant.dataset.holder.name,
                "purpose": term_label(use.delivery.grant.purpose),
                "at": use.delivery.at,
                "records": use.records,
            }
            for use in uses.order_by("-delivery__at", "-pk")[:DIGEST_MAX_LINES]
        ]
        _send(
            event,
            user,
            language,
            subject=_("Tiers: who used data about you"),
            template="digest",
            context={
                "uses": lines,
                "more": total - len(lines),
                "since": since,
                "until": until,
                "accesses_url": f"{settings.TIERS_BASE_URL}/me/accesses/",
            },
        )
