"""Migrate the peer's database and register one client_credentials client; print its credentials as JSON.

Run with bench/.venv-tools/bin/python (bench_oauth.py does); the database must exist.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from pathlib import Path


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dot_bench.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from oauth2_provider.models import Application

    call_command("migrate", verbosity=0)
    secret = secrets.token_urlsafe(32)
    application = Application.objects.create(
        name="bench client",
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
        client_secret=secret,
        hash_client_secret=False,  # plain text: the peer's cheapest configuration
    )
    print(json.dumps({"client_id": application.client_id, "secret": secret}))


if __name__ == "__main__":
    main()
