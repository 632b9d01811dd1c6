"""The load test's data: the fault tests' world, plus a federated dataset and grant to decide on.

Run with the Tiers environment (DATABASE_URL, REDIS_URL, secrets) of the stack under test:

    python -m bench.load_world OUT.json RECEIVER_URL CITIZENS

First tests/faults/world.py (the demo's organisations, clients and hosted mobility grants, and
CITIZENS citizens linked with Ligne Bleue, each consenting to both mobility purposes, webhooks to
the receiver). Then, through the services a holder, an operator and a data user call:

- Ligne Bleue registers `trips-live`, a federated dataset (its own API serves the trips; Tiers
  only decides whom each read may include), under a new agreement on the mobility module;
- the city asks for public-benefit access to it and Ligne Bleue approves: the federated grant.

OUT.json gets the fault world plus `federated`: the grant, the holder's client (scope
`decisions`) and the batch of subject references its API asks about: every linked reference of
Ligne Bleue, then references of customers who never linked an account, DECISION_SUBJECTS in all.
"""

from __future__ import annotations

import datetime
import json
import os
import sys
from pathlib import Path
from typing import Any

DECISION_SUBJECTS = 1000  # the most one decision call takes, and what the connector sends per call
HOLDER = "ligne-bleue"
DATA_USER = "ville-de-marlieux"
FIELDS = ["day", "origin", "destination", "mode"]


def federate(holder_slug: str, data_user_slug: str) -> dict[str, Any]:
    """A federated dataset of the holder, its agreement in force, and an approved grant for the data user."""
    from django.utils import timezone

    from broker.models import Membership, Organisation, User
    from consent.demo import PUBLIC_BENEFIT, RESEARCH
    from consent.models import IdentityLink
    from sharing import services
    from sharing.demo import DATASETS
    from sharing.models import Agreement, Dataset

    holder = Organisation.objects.get(slug=holder_slug)
    holder_admin = Membership.objects.get(organisation=holder, role=Membership.Role.ADMIN).user
    data_user = Organisation.objects.get(slug=data_user_slug)
    user_admin = Membership.objects.get(organisation=data_user, role=Membership.Role.ADMIN).user
    operator = User.objects.get(username="operator")
    spec = DATASETS[holder_slug]
    dataset = services.dataset_register(
        by=holder_admin,
        holder=holder,
        slug="trips-live",
        title="Trips, served by Ligne Bleue's own API",
        mode=Dataset.Mode.FEDERATED,
        api_base_url=f"https://api.{holder_slug}.example",
        table_schema=spec["table_schema"],
        subject_key_field=spec["subject_key_field"],
        personal_fields=spec["personal_fields"],
        data_categories=spec["data_categories"],
    )
    now = timezone.now()
    draft = services.agreement_propose(
        by=holder_admin,
        holder=holder,
        terms=services.AgreementTerms(
            title=f"{holder.name}: live trips for the general interest",
            datasets=[dataset],
            purposes=[RESEARCH, PUBLIC_BENEFIT],
            recipient_categories=["public-authority", "research-body"],
            consent_modules=[spec["module"]],
            approval_mode=Agreement.ApprovalMode.HOLDER,
            valid_from=now - datetime.timedelta(days=1),
            valid_until=now + datetime.timedelta(days=365),
        ),
    )
    signed = services.agreement_sign(by=holder_admin, agreement=draft, content_hash=draft.content_hash)
    services.agreement_countersign(by=operator, agreement=signed, content_hash=signed.content_hash)
    access_request = services.access_request_submit(
        by=user_admin,
        organisation=data_user,
        items=[services.RequestItem(dataset=dataset, fields=FIELDS)],
        purpose=PUBLIC_BENEFIT,
        justification="Follow the new tram line's ridership week by week, from the operator's live data.",
        starts_at=now,
        ends_at=now + datetime.timedelta(days=90),
        retention_days=90,
    )
    services.access_request_review(
        by=holder_admin, access_request=access_request, approve=True, reason="Within the agreement; load test."
    )
    grant = access_request.grants.get()
    linked = list(
        IdentityLink.objects.filter(holder=holder, unlinked_at__isnull=True)
        .order_by("subject_ref")
        .values_list("subject_ref", flat=True)
    )
    prefix = holder_slug[:2].upper()
    unlinked = [f"{prefix}-{80000 + number:05d}" for number in range(DECISION_SUBJECTS - len(linked))]
    return {
        "grant": str(grant.pk),
        "organisation": data_user_slug,
        "dataset": f"{holder_slug}/{dataset.slug}",
        "holder": holder_slug,
        "purpose": grant.purpose,
        "linked": len(linked),
        "subjects": linked + unlinked,
    }


def main() -> int:
    out, receiver_url, citizens = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "broker.settings")
    import django

    django.setup()
    from tests.faults.world import build

    world = build(out, receiver_url, citizens)
    world["federated"] = federate(HOLDER, DATA_USER)
    out.write_text(json.dumps(world, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
