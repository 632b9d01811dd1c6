"""Mail to citizens: expiry reminders and digests go to the right citizens only, in their language, once."""

from __future__ import annotations

import datetime
import json

import pytest
from django.core import mail
from django.utils import timezone

from broker import outbox
from broker.models import AuditBody, Organisation, OutboxEvent, User
from consent import services
from consent.models import CitizenProfile, ConsentModule
from consent.notifications import (
    DIGEST_TOPIC,
    DIGEST_VERB,
    REMINDER_TOPIC,
    REMINDER_VERB,
    digests_send,
    expiry_reminders_send,
)
from sharing.models import Dataset, Delivery, DeliverySubject, Grant
from tests.concurrency import both_at_once
from tests.consent.conftest import link
from tests.factories import CitizenFactory, OrganisationFactory

RESEARCH, POLICY = "dpv:ScientificResearch", "dpv:PublicPolicy"
SOON = datetime.timedelta(days=365 - 10)  # the module's consents last 365 days: 10 days left


def deliver(topic: str) -> None:
    """What a worker does with the queued mails."""
    for event_id in OutboxEvent.objects.filter(topic=topic, handled_at__isnull=True).values_list("pk", flat=True):
        outbox.dispatch(event_id)


def html_of(message: mail.EmailMessage) -> str:
    assert isinstance(message, mail.EmailMultiAlternatives)
    ((html, kind),) = message.alternatives
    assert kind == "text/html"
    return str(html)


def citizen(username: str, **profile: object) -> User:
    user = CitizenFactory(username=username)
    CitizenProfile.objects.filter(user=user).update(**profile)
    return User.objects.get(pk=user.pk)


@pytest.fixture
def citizens(alice: User, holder: Organisation, module: ConsentModule) -> dict[str, User]:
    """Alice reads English, Bruno French; Carole never confirmed her address; Dora gave none."""
    people = {
        "alice": alice,
        "bruno": citizen("bruno", preferred_language="fr"),
        "carole": citizen("carole", awaiting_email_verification=True),
        "dora": citizen("dora"),
    }
    User.objects.filter(pk=people["dora"].pk).update(email="")
    for number, person in enumerate(people.values()):
        link(person, holder, f"CUST-{number:04}")
        services.consent_give(citizen=person, module=module, purposes=[RESEARCH, POLICY])
    return people


# --- reminders ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_reminders_go_once_to_each_reachable_citizen_in_their_language(citizens: dict[str, User]) -> None:
    now = timezone.now() + SOON
    assert expiry_reminders_send(now=now) == 2
    assert expiry_reminders_send(now=now) == 0
    deliver(REMINDER_TOPIC)

    by_address = {message.to[0]: message for message in mail.outbox}
    assert set(by_address) == {"alice@example.org", "bruno@example.org"}
    english, french = by_address["alice@example.org"], by_address["bruno@example.org"]
    for person, message in (("alice", english), ("bruno", french)):
        for record in citizens[person].consents.all():
            assert f"http://testserver/me/consents/{record.pk}/" in message.body
            assert f"http://testserver/me/consents/{record.pk}/" in html_of(message)
        assert message.extra_headers["X-Tiers-Event-Id"]
    assert english.extra_headers["Content-Language"] == "en"
    assert "Your energy use, for research and public policy" in english.body
    assert "Scientific research" in english.body
    assert french.extra_headers["Content-Language"] == "fr"
    assert "Votre consommation d'énergie" in french.body  # not escaped in the text part
    assert "Recherche scientifique" in french.body
    assert '<html lang="fr">' in html_of(french)

    reminded = AuditBody.objects.filter(verb=REMINDER_VERB)
    assert reminded.count() == 4  # one per consent
    assert {body.citizen_id for body in reminded} == {citizens["alice"].pk, citizens["bruno"].pk}
    assert all(json.loads(bytes(body.canonical))["details"] == {"days": 30} for body in reminded)


@pytest.mark.django_db
def test_no_reminder_before_the_window_opens(citizens: dict[str, User]) -> None:
    assert expiry_reminders_send(now=timezone.now() + datetime.timedelta(days=300)) == 0
    assert not OutboxEvent.objects.filter(topic=REMINDER_TOPIC).exists()


@pytest.mark.django_db
def test_the_window_is_a_setting(citizens: dict[str, User], settings: object) -> None:
    settings.TIERS_CONSENT_REMINDER_DAYS = 5  # type: ignore[attr-defined]
    assert expiry_reminders_send(now=timezone.now() + SOON) == 0
    assert expiry_reminders_send(now=timezone.now() + datetime.timedelta(days=361)) == 2


@pytest.mark.django_db
def test_a_renewed_consent_is_reminded_again_in_its_next_term(citizens: dict[str, User]) -> None:
    alice = citizens["alice"]
    now = timezone.now() + SOON
    expiry_reminders_send(now=now)
    record = alice.consents.get(purpose=RESEARCH)
    renewed = services.consent_renew(citizen=alice, record=record)

    later = renewed.expires_at - datetime.timedelta(days=10)
    assert expiry_reminders_send(now=later) == 1
    (event,) = OutboxEvent.objects.filter(topic=REMINDER_TOPIC, payload__citizen=alice.pk).order_by("-pk")[:1]
    assert event.payload["consents"] == [str(record.pk)]


@pytest.mark.django_db
def test_a_consent_renewed_before_the_mail_leaves_is_left_out(citizens: dict[str, User]) -> None:
    alice = citizens["alice"]
    expiry_reminders_send(now=timezone.now() + SOON)
    for record in alice.consents.all():
        services.consent_renew(citizen=alice, record=record)
    deliver(REMINDER_TOPIC)
    assert [message.to for message in mail.outbox] == [["bruno@example.org"]]


@pytest.mark.django_db(transaction=True)
def test_two_reminder_runs_at_once_remind_once(holder: Organisation, module: ConsentModule) -> None:
    for number in range(6):
        person = CitizenFactory(username=f"citizen{number}")
        link(person, holder, f"CUST-{number:04}")
        services.consent_give(citizen=person, module=module, purposes=[RESEARCH])
    now = timezone.now() + SOON

    counts = both_at_once(lambda: expiry_reminders_send(now=now))

    assert sum(counts) == 6
    assert OutboxEvent.objects.filter(topic=REMINDER_TOPIC).count() == 6
    assert AuditBody.objects.filter(verb=REMINDER_VERB).count() == 6
    deliver(REMINDER_TOPIC)
    assert sorted(message.to[0] for message in mail.outbox) == sorted(f"citizen{n}@example.org" for n in range(6))


# --- digests -------------------------------------------------------------------------------------------


@pytest.fixture
def city(db: None) -> Organisation:
    return OrganisationFactory(slug="ville", name="Ville de Marlieux", kind=Organisation.Kind.USER)


def use(city: Organisation, holder: Organisation, person: User, title: str, *, at: datetime.datetime) -> None:
    """A delivery that included the citizen (written directly: reads cannot be backdated)."""
    dataset = Dataset.objects.create(holder=holder, slug=title.lower(), title=title, mode=Dataset.Mode.HOSTED)
    grant = Grant.objects.create(
        organisation=city,
        dataset=dataset,
        purpose=RESEARCH,
        starts_at=at - datetime.timedelta(days=1),
        ends_at=at + datetime.timedelta(days=60),
    )
    delivery = Delivery.objects.create(
        grant=grant, kind=Delivery.Kind.HOSTED, at=at, records=3, subjects=1, subjects_digest="0" * 64, audit_entry_id=0
    )
    DeliverySubject.objects.create(delivery=delivery, subject_ref="X", pseudonym="p", citizen=person, records=3)


@pytest.fixture
def readers(alice: User, holder: Organisation, city: Organisation) -> dict[str, User]:
    """Alice (English) and Bruno (French) had their data used an hour ago; Carole's address is unconfirmed."""
    people = {
        "alice": alice,
        "bruno": citizen("bruno", preferred_language="fr"),
        "carole": citizen("carole", awaiting_email_verification=True),
    }
    an_hour_ago = timezone.now() - datetime.timedelta(hours=1)
    use(city, holder, people["alice"], "Meters", at=an_hour_ago)
    use(city, holder, people["alice"], "Trips", at=an_hour_ago)
    use(city, holder, people["bruno"], "Parcels", at=an_hour_ago)
    use(city, holder, people["carole"], "Tickets", at=an_hour_ago)
    return people


@pytest.mark.django_db
def test_a_digest_lists_each_citizens_own_new_uses_in_their_language(readers: dict[str, User]) -> None:
    assert digests_send() == 2
    assert digests_send() == 0
    deliver(DIGEST_TOPIC)

    by_address = {message.to[0]: message for message in mail.outbox}
    assert set(by_address) == {"alice@example.org", "bruno@example.org"}
    english, french = by_address["alice@example.org"], by_address["bruno@example.org"]
    assert ("Meters" in english.body, "Trips" in english.body, "Parcels" in english.body) == (True, True, False)
    assert "Ville de Marlieux" in english.body
    assert "Scientific research" in english.body
    assert "http://testserver/me/accesses/" in english.body
    assert "http://testserver/me/accesses/" in html_of(english)
    assert ("Parcels" in french.body, "Meters" in french.body) == (True, False)
    assert "Recherche scientifique" in french.body
    assert french.extra_headers["Content-Language"] == "fr"

    sent = AuditBody.objects.filter(verb=DIGEST_VERB)
    assert {body.citizen_id for body in sent} == {readers["alice"].pk, readers["bruno"].pk}
    assert all(set(json.loads(bytes(body.canonical))["details"]) == {"period_start", "period_end"} for body in sent)


@pytest.mark.django_db
def test_the_next_digest_comes_a_period_later_with_only_the_new_uses(
    readers: dict[str, User], holder: Organisation, city: Organisation
) -> None:
    digests_send()
    deliver(DIGEST_TOPIC)
    mail.outbox.clear()
    use(city, holder, readers["alice"], "Energy", at=timezone.now() + datetime.timedelta(days=1))

    assert digests_send(now=timezone.now() + datetime.timedelta(days=3)) == 0  # within the week
    assert digests_send(now=timezone.now() + datetime.timedelta(days=7)) == 1  # Bruno has nothing new
    deliver(DIGEST_TOPIC)
    (message,) = mail.outbox
    assert message.to == ["alice@example.org"]
    assert ("Energy" in message.body, "Meters" in message.body) == (True, False)


@pytest.mark.django_db
def test_no_digest_without_new_uses(alice: User) -> None:
    assert digests_send() == 0
    assert not AuditBody.objects.filter(verb=DIGEST_VERB).exists()


@pytest.mark.django_db(transaction=True)
def test_two_digest_runs_at_once_send_once(holder: Organisation, city: Organisation) -> None:
    an_hour_ago = timezone.now() - datetime.timedelta(hours=1)
    for number in range(6):
        use(city, holder, CitizenFactory(username=f"reader{number}"), f"Set{number}", at=an_hour_ago)

    counts = both_at_once(digests_send)

    assert sum(counts) == 6
    assert OutboxEvent.objects.filter(topic=DIGEST_TOPIC).count() == 6
    assert AuditBody.objects.filter(verb=DIGEST_VERB).count() == 6
