"""The alerts' receivers of the lower layers' signals (connected in ``PatientsConfig.ready``):
an exam scored (scoring), signed or read by a clinician (readings), a blood gas recorded or
changed (records). Each checks the rules once the sender's transaction commits, so it reads the
committed score of record; a failure is logged and never reaches the work that sent the signal
(a later event, or evaluating again, raises what it missed: evaluation is idempotent).
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.db import transaction

from patients.alerts import services
from patients.readings.signals import exam_signed, reading_saved
from patients.records.signals import blood_gas_saved
from scoring.signals import exam_scored

logger = logging.getLogger(__name__)


def _later(work: Callable[[], Any], what: str) -> None:
    def run() -> None:
        try:
            work()
        except Exception:
            logger.exception("alert evaluation of %s failed", what)

    transaction.on_commit(run)


def evaluate_exam(sender: Any, *, exam_id: int, **kwargs: Any) -> None:
    """An exam was scored, signed, or a clinician read one of its zones."""
    _later(lambda: services.alerts_evaluate_exam(exam_id=exam_id), f"exam {exam_id}")


def evaluate_gas(sender: Any, *, gas: Any, **kwargs: Any) -> None:
    """A blood gas was recorded or changed."""
    gas_id = gas.pk
    _later(lambda: services.alerts_evaluate_gas(gas_id=gas_id), f"blood gas {gas_id}")


def connect() -> None:
    """Subscribe to the lower layers' signals (they never import the alerts)."""
    exam_scored.connect(evaluate_exam, dispatch_uid="alerts.exam_scored")
    exam_signed.connect(evaluate_exam, dispatch_uid="alerts.exam_signed")
    reading_saved.connect(evaluate_exam, dispatch_uid="alerts.reading_saved")
    blood_gas_saved.connect(evaluate_gas, dispatch_uid="alerts.blood_gas_saved")
