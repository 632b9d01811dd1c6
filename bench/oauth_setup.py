"""Register bench_oauth.py's Tiers clients; print their credentials as JSON on the last line.

Run with DJANGO_SETTINGS_MODULE=bench.tiers_bench_settings and the benchmark's DATABASE_URL
(bench_oauth.py does, on a freshly migrated `tiers_oauth_bench`). It creates a verified
organisation with an admin member, registers a client_secret_basic client and a
private_key_jwt client (ES256 key generated here) through broker.oauth.services, and
makes the broker's JWS signing key so that the server's workers do not race to create it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import django

    django.setup()
    from django.utils import timezone
    from joserfc.jwk import ECKey

    from broker import keys
    from broker.models import Membership, Organisation, SigningKey, User
    from broker.oauth import services

    organisation = Organisation.objects.create(
        slug="bench-city",
        name="Bench City",
        legal_identifier="000000001",
        identifier_scheme=Organisation.IdentifierScheme.SIREN,
        country="FR",
        kind=Organisation.Kind.USER,
        verification_state=Organisation.Verification.VERIFIED,
        verified_at=timezone.now(),
    )
    admin = User.objects.create_user(username="bench-admin", password=None)
    Membership.objects.create(user=admin, organisation=organisation, role=Membership.Role.ADMIN)
    basic, secret = services.client_register(
        actor=admin,
        organisation=organisation,
        name="bench basic",
        auth_method="client_secret_basic",
        scopes=["organisation"],
    )
    key = ECKey.generate_key("P-256", parameters={"kid": "bench-key-1", "alg": "ES256"}, private=True)
    signed, _ = services.client_register(
        actor=admin,
        organisation=organisation,
        name="bench jwt",
        auth_method="private_key_jwt",
        scopes=["organisation"],
        jwks={"keys": [key.as_dict(private=False)]},
    )
    keys.active_key(SigningKey.Purpose.JWS)
    print(
        json.dumps(
            {
                "basic": {"client_id": basic.client_id, "secret": secret},
                "private_key_jwt": {"client_id": signed.client_id, "jwk": key.as_dict(private=True)},
            }
        )
    )


if __name__ == "__main__":
    main()
