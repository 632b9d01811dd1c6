"""Create the demo's organisations, people and logins. Safe to run again."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from broker import services
from broker.audit import sequencer
from broker.demo import demo_clients, totp_secret
from broker.dga.profile import seed_demo_profile
from broker.models import Membership, Organisation, User
from consent.demo import seed_consents
from consent.models import CitizenProfile
from sharing.demo import seed_sharing

ORGANISATIONS = [
    # slug, name, kind, SIREN (Luhn-valid), contact, recipient category
    ("ville-de-marlieux", "Ville de Marlieux", "user", "213800014", "donnees@marlieux.example", "public-authority"),
    (
        "labo-mobilites",
        "Laboratoire Mobilités et Territoires",
        "user",
        "180089013",
        "contact@labo-mobilites.example",
        "research-body",
    ),
    ("volta-energie", "Volta Énergie", "holder", "552081317", "dpo@volta-energie.example", ""),
    ("ligne-bleue", "Ligne Bleue Mobilité", "holder", "808765432", "dpo@ligne-bleue.example", ""),
]
CITIZENS = [
    ("alice", "Alice Martin", "fr"),
    ("bruno", "Bruno Lefèvre", "fr"),
    ("chloe", "Chloé Nguyen", "en"),
]


class Command(BaseCommand):
    help = "Create the demo data and write every demo login to demo-credentials.json."

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(settings.DEMO_CREDENTIALS_FILE)
        previous = self._previous(path)
        known = {user["username"]: user["password"] for user in previous.get("users", [])}
        known_clients = {client["client_id"]: client for client in previous.get("clients", [])}
        known_totp = {
            user["username"]: user["totp_secret"] for user in previous.get("users", []) if "totp_secret" in user
        }
        users: list[dict[str, Any]] = []
        clients: list[dict[str, Any]] = []
        holders: dict[str, tuple[Organisation, User]] = {}
        data_users: dict[str, tuple[Organisation, User]] = {}
        citizens: list[User] = []
        with transaction.atomic():
            seed_demo_profile()
            operator = self._user("operator", known, is_staff=True, is_superuser=True)
            users.append(self._entry(operator, known, "operator", None, totp_secret(operator, known_totp)))
            for slug, name, kind, siren, contact, recipient_category in ORGANISATIONS:
                organisation = self._organisation(operator, slug, name, kind, siren, contact, recipient_category)
                admin = self._user(f"{slug}-admin", known)
                services.membership_set(
                    actor=operator, organisation=organisation, user=admin, role=Membership.Role.ADMIN
                )
                users.append(self._entry(admin, known, "org_admin", slug, totp_secret(admin, known_totp)))
                clients.extend(demo_clients(organisation, admin, known_clients))
                if organisation.holds_data:
                    holders[slug] = (organisation, admin)
                else:
                    data_users[slug] = (organisation, admin)
            for username, display_name, language in CITIZENS:
                citizen = self._user(username, known)
                CitizenProfile.objects.get_or_create(
                    user=citizen, defaults={"display_name": display_name, "preferred_language": language}
                )
                users.append(self._entry(citizen, known, "citizen", None))
                citizens.append(citizen)
            seed_consents(holders, citizens)
            grants = seed_sharing(holders, data_users, operator)
        sequencer.sequence()  # the demo's log is signed before anyone looks
        credentials = {"base_url": settings.TIERS_BASE_URL, "users": users, "clients": clients, "grants": grants}
        path.write_text(json.dumps(credentials, indent=2, ensure_ascii=False) + "\n")
        path.chmod(0o600)
        self.stdout.write(f"Demo data ready: {len(users)} logins and {len(clients)} clients written to {path}")

    def _previous(self, path: Path) -> dict[str, Any]:
        """An earlier run's credentials, reused so that a re-seed locks nobody out."""
        try:
            previous = json.loads(path.read_text())
        except (OSError, ValueError):
            return {}
        return previous if isinstance(previous, dict) else {}

    def _user(self, username: str, known: dict[str, str], **flags: bool) -> User:
        user, _ = User.objects.get_or_create(username=username, defaults={"email": f"{username}@demo.example"})
        password = known.setdefault(username, secrets.token_urlsafe(12))
        if not user.check_password(password) or any(getattr(user, k) != v for k, v in flags.items()):
            user.set_password(password)
            for key, value in flags.items():
                setattr(user, key, value)
            user.save()
        return user

    def _entry(
        self, user: User, known: dict[str, str], role: str, slug: str | None, totp: str | None = None
    ) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "username": user.username,
            "password": known[user.username],
            "role": role,
            "organisation": slug,
        }
        if totp is not None:
            entry["totp_secret"] = totp  # the second factor: any TOTP app, or `pyotp.TOTP(secret).now()`
        return entry

    def _organisation(
        self, operator: User, slug: str, name: str, kind: str, siren: str, contact: str, recipient_category: str
    ) -> Organisation:
        organisation = Organisation.objects.filter(slug=slug).first() or services.organisation_register(
            actor=operator,
            slug=slug,
            name=name,
            legal_identifier=siren,
            identifier_scheme=Organisation.IdentifierScheme.SIREN,
            country="FR",
            kind=kind,
            contact_email=contact,
            recipient_category=recipient_category,
        )
        return services.organisation_verify(actor=operator, organisation=organisation)
