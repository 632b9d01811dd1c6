"""Rights requests reach the data users that received the citizen's data, under their own pseudonyms."""

from __future__ import annotations

from broker.models import Organisation, User, WebhookDelivery
from consent import services as consent
from sharing import delivery as sharing_delivery
from sharing import vault
from tests.broker.webhooks.conftest import World, endpoint_for
from tests.conftest import client_for


def test_a_request_reaches_the_holder_and_the_data_users_that_received_the_citizen(
    world: World, city: Organisation, other_holder: Organisation, bob: User
) -> None:
    for organisation in (world.holder, world.lab, city, other_holder):
        endpoint_for(organisation)
    read = sharing_delivery.open_read(world.grant)
    assert read.delivery.subjects == 1
    filed = consent.rights_request_file(citizen=world.alice, kind="erasure", details="Erase everything.")
    recipients = {r.organisation.slug: r for r in filed.recipients.select_related("organisation", "delivery")}
    assert set(recipients) == {"volta", "labo"}
    to_lab = recipients["labo"].delivery
    assert to_lab is not None
    pseudonym = vault.pseudonym(vault.pseudonym_key(world.lab), world.holder.pk, "CUST-0001")
    assert to_lab.payload["subjects"] == [{"holder": "volta", "subject_pseudonym": pseudonym}]
    assert "subject_ref" not in to_lab.payload
    assert not WebhookDelivery.objects.filter(endpoint__organisation__in=[city, other_holder]).exists()
    shown = client_for(world.alice).get("/api/v1/me/rights/").json()
    assert sorted(r["organisation"] for r in shown[0]["recipients"]) == ["labo", "volta"]
    assert client_for(bob).get(f"/api/v1/me/rights/{filed.pk}").status_code == 404
