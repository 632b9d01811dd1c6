"""Scheduled jobs: each is in the beat schedule, registered with Celery (so run_scheduler runs it too), thin."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings

from broker.celery import app

JOBS = {
    "consents-expire": ("consent.tasks.consents_expire", 300.0),
    "grants-expire": ("sharing.tasks.grants_expire", 60.0),
    "vault-purge": ("sharing.tasks.vault_purge", 3600.0),
    "delivery-logs-purge": ("sharing.tasks.delivery_logs_purge", 86400.0),
    "consent-reminders": ("consent.tasks.consent_reminders_send", 86400.0),
    "citizen-digests": ("consent.tasks.digests_send", 86400.0),
}


@pytest.mark.parametrize("name", sorted(JOBS))
def test_each_job_is_scheduled_and_a_late_run_is_dropped(name: str) -> None:
    entry: dict[str, Any] = settings.CELERY_BEAT_SCHEDULE[name]
    task, every = JOBS[name]
    assert (entry["task"], float(entry["schedule"])) == (task, every)
    assert entry["options"]["expires"] == every


def test_each_job_is_registered_as_run_scheduler_and_workers_load_them() -> None:
    app.loader.import_default_modules()  # what `manage.py run_scheduler` and a worker do at start
    for task, _ in JOBS.values():
        assert task in app.tasks


@pytest.mark.django_db
@pytest.mark.parametrize("task", sorted(task for task, _ in JOBS.values()))
def test_each_task_runs_its_job_and_returns_the_count(task: str) -> None:
    app.loader.import_default_modules()
    assert app.tasks[task].apply(throw=True).get() == 0  # nothing is due in an empty database


def test_the_jobs_settings_have_their_defaults() -> None:
    assert settings.TIERS_CONSENT_REMINDER_DAYS == 30
    assert settings.TIERS_DELIVERY_LOG_RETENTION_DAYS == 400
