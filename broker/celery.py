"""The Celery application, configured from Django's settings (CELERY_* names).

Every setting is explained in docs/celery.md; what they guarantee under faults
(Redis down, a worker killed, PostgreSQL restarted) is shown in docs/faults.md.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "broker.settings")

app = Celery("tiers")
app.config_from_object("django.conf:settings", namespace="CELERY")
# The `tasks` module of every installed app, and of the packages inside the trust core that are
# not apps of their own: a worker that does not know a task name drops its messages.
app.autodiscover_tasks()
app.autodiscover_tasks(["broker.webhooks"])
