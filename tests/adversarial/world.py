"""Two of everything, so that "another organisation's object" always exists.

Side A: the holder Volta (admin hana, reviewer rita, data steward stan), the data user Marlieux
(admin ugo) and the citizen alice. Side B: the holder Ligne Bleue (admin lina), the data user
Labo (admin lea) and the citizen bob. Each side has a hosted dataset with an upload, an
agreement in force, a draft and a holder-signed version, a pending access request (under a
holder-review agreement), an active grant, an ended grant with and without filed results, a
consent, a rights request, a webhook endpoint with a dead delivery, and an OAuth client.
Built with the services and the helpers of tests/sharing/conftest.py.
"""

from __future__ import annotations

import base64
import datetime
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.test import Client
from django.utils import timezone

from broker.audit import sequencer
from broker.dga.profile import seed_demo_profile
from broker.models import AuditEntry, Membership, Organisation, User, WebhookDelivery, WebhookEndpoint
from broker.oauth import services as oauth
from broker.oauth.models import OAuthClient
from consent import services as consent
from consent.models import ConsentModule
from sharing import services
from sharing.models import Agreement, Dataset, Grant
from tests.factories import CitizenFactory, MembershipFactory, OrganisationFactory, UserFactory
from tests.sharing.conftest import (
    JUSTIFICATION,
    MODULE,
    RESEARCH,
    TRIPS_SCHEMA,
    agreement_in_force,
    consent_to,
    grant_for,
    link,
    terms,
    trips_csv,
    upload,
)

# A side's organisations by role; the counterpart of each is the same role on the other side.
HOLDERS = {"A": "volta", "B": "ligne"}
USERS = {"A": "marlieux", "B": "labo"}
COUNTERPART = {"volta": "ligne", "ligne": "volta", "marlieux": "labo", "labo": "marlieux"}


@dataclass
class World:
    users: dict[str, User] = field(default_factory=dict)
    orgs: dict[str, Organisation] = field(default_factory=dict)
    # kind -> organisation slug (or citizen username) -> the object's id
    objects: dict[str, dict[str, str]] = field(default_factory=dict)
    clients: dict[tuple[str, str], tuple[OAuthClient, str]] = field(default_factory=dict)
    tokens: dict[tuple[str, str], str] = field(default_factory=dict)
    content_hashes: dict[str, str] = field(default_factory=dict)

    def put(self, kind: str, owners: list[str], value: Any) -> None:
        for owner in owners:
            self.objects.setdefault(kind, {})[owner] = str(value)

    def token(self, organisation: str, scope: str) -> str:
        """An access token of the organisation's client with exactly this scope (minted once)."""
        key = (organisation, scope)
        if key not in self.tokens:
            if scope.startswith("grant:"):
                client, secret = self.client(organisation, "grants")
                form = {"grant_type": "client_credentials", "scope": f"grant:{self.objects['grant'][organisation]}"}
            else:
                client, secret = self.client(organisation, scope)
                form = {"grant_type": "client_credentials", "scope": scope}
            auth = "Basic " + base64.b64encode(f"{client.client_id}:{secret}".encode()).decode()
            response = Client().post("/oauth/token", form, HTTP_AUTHORIZATION=auth)
            assert response.status_code == 200, response.content
            self.tokens[key] = response.json()["access_token"]
        return self.tokens[key]

    def client(self, organisation: str, scope: str) -> tuple[OAuthClient, str]:
        key = (organisation, scope)
        if key not in self.clients:
            admin = self.users[{"volta": "hana", "ligne": "lina", "marlieux": "ugo", "labo": "lea"}[organisation]]
            scopes = scope.split(" ")
            client, secret = oauth.client_register(
                actor=admin,
                organisation=self.orgs[organisation],
                name=f"{scope} client",
                auth_method="client_secret_basic",
                scopes=scopes,
            )
            assert secret is not None
            self.clients[key] = (client, secret)
        return self.clients[key]


@contextmanager
def rolled_back(django_db_blocker: Any) -> Iterator[None]:
    """A transaction for a whole module, rolled back at its end; each test's own runs as a savepoint in it."""
    with django_db_blocker.unblock():
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            yield
        finally:
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)


def build() -> World:
    world = World()
    seed_demo_profile()  # the DGA registration the register and dossier read
    operator = UserFactory(username="olga", is_staff=True)
    world.users["olga"] = operator
    world.users["sam"] = UserFactory(username="sam")  # logged in, nobody
    for username in ("alice", "bob"):
        world.users[username] = CitizenFactory(username=username)
    for slug, kind, category in (
        ("volta", Organisation.Kind.HOLDER, ""),
        ("ligne", Organisation.Kind.HOLDER, ""),
        ("marlieux", Organisation.Kind.USER, Organisation.RecipientCategory.PUBLIC_AUTHORITY),
        ("labo", Organisation.Kind.USER, Organisation.RecipientCategory.RESEARCH_BODY),
    ):
        world.orgs[slug] = OrganisationFactory(slug=slug, name=slug.title(), kind=kind, recipient_category=category)
    for username, slug, role in (
        ("hana", "volta", Membership.Role.ADMIN),
        ("rita", "volta", Membership.Role.REVIEWER),
        ("stan", "volta", Membership.Role.DATA_STEWARD),
        ("lina", "ligne", Membership.Role.ADMIN),
        ("ugo", "marlieux", Membership.Role.ADMIN),
        ("lea", "labo", Membership.Role.ADMIN),
    ):
        world.users[username] = MembershipFactory(
            user__username=username, organisation=world.orgs[slug], role=role
        ).user
    for side in ("A", "B"):
        _side(world, side, operator)
    sequencer.sequence()
    world.put("leaf_alice", ["alice"], _leaf_about(world.users["alice"]))
    world.put("leaf_alice", ["bob"], _leaf_about(world.users["bob"]))
    return world


def _side(world: World, side: str, operator: User) -> None:
    holder_slug, user_slug = HOLDERS[side], USERS[side]
    holder, data_user = world.orgs[holder_slug], world.orgs[user_slug]
    admin = world.users["hana" if side == "A" else "lina"]
    user_admin = world.users["ugo" if side == "A" else "lea"]
    citizen = world.users["alice" if side == "A" else "bob"]
    both = [holder_slug, user_slug]

    module: ConsentModule = consent.module_publish(actor=admin, holder=holder, slug="mobility", content=dict(MODULE))
    trips = _dataset(admin, holder, "trips")
    survey = _dataset(admin, holder, "survey")
    drafts = _dataset(admin, holder, "drafts")
    world.put("dataset", both, trips.pk)
    world.put("upload", both, upload(admin, trips, trips_csv([("t1", "2026-01-05", "Gare", "Port", 3.5)])).pk)
    meters = services.dataset_register(
        by=admin,
        holder=holder,
        slug="meters",
        title="Meters",
        mode=Dataset.Mode.FEDERATED,
        api_base_url=f"https://api.{holder_slug}.example",
        table_schema=TRIPS_SCHEMA,
        subject_key_field="traveller",
        personal_fields=["traveller", "origin", "destination"],
        data_categories=["dpv-pd:Location"],
    )
    in_force = agreement_in_force(admin, operator, [trips, meters])
    agreement_in_force(admin, operator, [survey], approval_mode=Agreement.ApprovalMode.HOLDER)
    world.put("agreement", both, in_force.pk)
    draft = services.agreement_propose(by=admin, holder=holder, terms=terms([drafts], title="Draft terms"))
    world.put("draft", both, draft.pk)
    world.content_hashes[str(draft.pk)] = draft.content_hash
    to_sign = services.agreement_propose(by=admin, holder=holder, terms=terms([drafts], title="Signed terms"))
    signed = services.agreement_sign(by=admin, agreement=to_sign, content_hash=to_sign.content_hash)
    world.put("signed", both, signed.pk)
    world.content_hashes[str(signed.pk)] = signed.content_hash

    link(citizen, holder, f"subject-{citizen.username}")
    records = consent_to(citizen, module, RESEARCH)
    world.put("consent", [citizen.username], records[0].pk)
    world.put("module", [citizen.username, holder_slug], module.pk)
    world.put("rights", [citizen.username], consent.rights_request_file(citizen=citizen, kind="erasure").pk)

    grant = grant_for(user_admin, data_user, trips)
    world.put("grant", both, grant.pk)
    world.put("fgrant", both, grant_for(user_admin, data_user, meters).pk)
    ended = grant_for(user_admin, data_user, trips)
    services.grant_revoke(by=admin, grant=ended, reason="Ended for the tests.")
    world.put("grant_ended", both, ended.pk)
    filed = grant_for(user_admin, data_user, trips)
    services.grant_revoke(by=admin, grant=filed, reason="Ended for the tests.")
    services.results_file(by=user_admin, grant=filed, summary=JUSTIFICATION, data_deleted=True)
    world.put("grant_filed", both, filed.pk)
    now = timezone.now()
    pending = services.access_request_submit(
        by=user_admin,
        organisation=data_user,
        items=[services.RequestItem(dataset=survey, fields=["day", "origin"])],
        purpose=RESEARCH,
        justification=JUSTIFICATION,
        starts_at=now,
        ends_at=now + datetime.timedelta(days=90),
        retention_days=90,
    )
    world.put("request", both, pending.pk)

    for slug in both:
        endpoint = WebhookEndpoint.objects.create(
            organisation=world.orgs[slug], url=f"https://hooks.{slug}.example/tiers", created_by="test"
        )
        world.put("endpoint", [slug], endpoint.pk)
        dead = WebhookDelivery.objects.create(
            endpoint=endpoint, event_type="grant-revoked", payload={}, state=WebhookDelivery.State.DEAD
        )
        world.put("delivery", [slug], dead.pk)
        client, _ = world.client(slug, "organisation")
        world.put("client", [slug], client.client_id)


def _dataset(admin: User, holder: Organisation, slug: str) -> Dataset:
    return services.dataset_register(
        by=admin,
        holder=holder,
        slug=slug,
        title=slug.title(),
        mode=Dataset.Mode.HOSTED,
        table_schema=TRIPS_SCHEMA,
        subject_key_field="traveller",
        personal_fields=["traveller", "origin", "destination"],
        data_categories=["dpv-pd:Location"],
    )


def _leaf_about(citizen: User) -> int:
    entry = AuditEntry.objects.filter(body__citizen_id=citizen.pk, leaf_index__isnull=False).order_by("pk").first()
    assert entry is not None, f"no sequenced audit entry about {citizen.username}"
    return entry.leaf_index


def grant_of(world: World, owner: str) -> Grant:
    return Grant.objects.get(pk=world.objects["grant"][owner])
