"""The data a fault scenario plays with, written into a private Tiers database.

Run with the Tiers environment (DATABASE_URL, REDIS_URL, secrets) of the stack under test:

    python -m tests.faults.world OUT.json RECEIVER_URL CITIZENS

Seeds the demo (organisations, clients, the mobility dataset and its two grants), then adds
CITIZENS citizens linked with the transport holder, each with TRIPS trips in the dataset and
both mobility purposes consented, and registers the receiver's endpoints for the holder and
the two data users. Writes what the scenarios need (logins, clients, grants, consents) to OUT.json.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from pathlib import Path
from typing import Any

TRIPS = 3
HOLDER = "ligne-bleue"
PASSWORD = "fault-tests-only-password"


def build(out: Path, receiver_url: str, citizens: int) -> dict[str, Any]:
    from django.conf import settings
    from django.core.management import call_command

    credentials = out.with_suffix(".demo.json")
    settings.DEMO_CREDENTIALS_FILE = credentials
    call_command("seed_demo", verbosity=0)
    demo = json.loads(credentials.read_text())

    from broker.models import Membership, Organisation, User
    from broker.webhooks import services as webhooks
    from consent import services as consent
    from consent.models import CitizenProfile, ConsentModule
    from sharing import ingest
    from sharing.models import Upload

    holder = Organisation.objects.get(slug=HOLDER)
    holder_admin = Membership.objects.get(organisation=holder, role=Membership.Role.ADMIN).user
    module = ConsentModule.objects.filter(holder=holder, retired_at__isnull=True).latest("version")
    dataset = holder.datasets.get(slug="trips")
    people = []
    rows = io.StringIO()
    writer = csv.writer(rows, lineterminator="\n")
    writer.writerow(["traveller", "day", "departure", "origin", "destination", "km", "mode"])
    for number in range(1, citizens + 1):
        username = f"fault-citizen-{number:03d}"
        user = User.objects.create_user(username=username, email=f"{username}@faults.example", password=PASSWORD)
        CitizenProfile.objects.create(user=user, display_name=username)
        subject_ref = f"LI-{70000 + number:05d}"
        _, code = consent.link_code_issue(actor="system", holder=holder, subject_ref=subject_ref)
        consent.link_redeem(citizen=user, code=code)
        records = consent.consent_give(citizen=user, module=module, purposes=list(module.purposes))
        for trip in range(TRIPS):
            writer.writerow([subject_ref, f"2026-10-{trip + 1:02d}", "08:00", "Gare", "Campus", "3.5", "tram"])
        people.append({"username": username, "consents": {record.purpose: str(record.pk) for record in records}})
    received = ingest.upload_receive(
        by=holder_admin,
        dataset=dataset,
        body=io.BytesIO(rows.getvalue().encode()),
        content_type="text/csv",
        on_error=Upload.OnError.ALL_OR_NOTHING,
        replace=False,
    )
    if ingest.ingest(str(received.pk)).state != Upload.State.LOADED:
        raise RuntimeError("the fault citizens' trips did not load")

    endpoints = {}
    for grant in [*demo["grants"], {"organisation": HOLDER}]:
        slug = grant["organisation"]
        organisation = Organisation.objects.get(slug=slug)
        admin = Membership.objects.get(organisation=organisation, role=Membership.Role.ADMIN).user
        url = f"{receiver_url.rstrip('/')}/hooks/{slug}"
        webhooks.endpoint_register(by=admin, organisation=organisation, url=url)
        endpoints[slug] = url
    return {
        "base_url": settings.TIERS_BASE_URL,
        "password": PASSWORD,
        "trips": TRIPS,
        "citizens": people,
        "grants": demo["grants"],
        "clients": [client for client in demo["clients"] if client["auth_method"] == "client_secret_basic"],
        "endpoints": endpoints,
    }


def main() -> int:
    out, receiver_url, citizens = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "broker.settings")
    import django

    django.setup()
    world = build(out, receiver_url, citizens)
    out.write_text(json.dumps(world, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
