"""A CSV whose header names 100,000 columns: refused as a whole, and the database connection survives.

Apart from test_uploads.py because, while the bug below stands, the ingestion kills its database
connection: this test owns its own transaction (Django drops the dead connection at its end).
"""

from __future__ import annotations

import io

import pytest
from django.db import connection

from broker.models import Membership, Organisation
from sharing import ingest
from sharing.models import Record, Upload
from tests.adversarial.world import _dataset
from tests.factories import MembershipFactory, OrganisationFactory


@pytest.mark.django_db
def test_a_header_of_a_hundred_thousand_columns_fails_the_upload_cleanly() -> None:
    holder = OrganisationFactory(slug="bomb-holder", kind=Organisation.Kind.HOLDER)
    admin = MembershipFactory(user__username="bomb", organisation=holder, role=Membership.Role.ADMIN).user
    dataset = _dataset(admin, holder, "bombed")
    header = ",".join(f"column{i}" for i in range(100_000)) + "\n"
    received = ingest.upload_receive(
        by=admin,
        dataset=dataset,
        body=io.BytesIO(header.encode()),
        content_type="text/csv",
        on_error="keep_valid",
        replace=False,
    )
    try:
        upload = ingest.ingest(str(received.pk))
    finally:
        alive = connection.connection is not None and not connection.connection.closed
    assert alive, "the ingestion killed its database connection"
    assert upload.state == Upload.State.FAILED
    assert len(upload.failure) < 2000
    assert Record.objects.filter(dataset=dataset).count() == 0
