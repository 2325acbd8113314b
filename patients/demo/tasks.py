"""The demo's background seeding (``make demo``): one patient per task, on the bulk queue."""
from __future__ import annotations

from celery import shared_task

from lusweb.tasks import DURABLE
from patients.demo.seed import DEMO_PATIENT_TASK, DemoOptions, demo_patient_seed
from patients.studies.models import Study


@shared_task(name=DEMO_PATIENT_TASK, **DURABLE)
def demo_patient_seed_task(study_id: int, index: int, options: dict[str, int]) -> str:
    """Seed the demo's ``index``-th patient (idempotent: a patient that exists is left alone)."""
    study = Study.objects.filter(pk=study_id).first()
    if study is None:
        return "no such study"
    patient = demo_patient_seed(study=study, index=index, options=DemoOptions(**options))
    return "exists" if patient is None else patient.code
