"""Every LUSWeb task is durable and retries only the named transient errors."""
from __future__ import annotations

from django.db import IntegrityError

from lusweb.celery import app
from lusweb.tasks import DURABLE, TRANSIENT_ERRORS


def test_every_project_task_is_acknowledged_late_and_retries_only_transient_errors() -> None:
    app.loader.import_default_modules()
    ours = {name: task for name, task in app.tasks.items() if not name.startswith("celery.")}
    assert len(ours) >= 5, sorted(ours)  # clip check, scoring, severity, site training, demo seeding
    for name, task in ours.items():
        assert task.acks_late and task.reject_on_worker_lost, name
        assert tuple(task.autoretry_for) == TRANSIENT_ERRORS, name
        assert (task.retry_backoff, task.retry_backoff_max, task.max_retries) == (2, 60, 8), name
    assert IntegrityError not in TRANSIENT_ERRORS  # a broken rule is a final answer, not a retry
    assert DURABLE["autoretry_for"] is TRANSIENT_ERRORS
