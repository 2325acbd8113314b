from __future__ import annotations

from django.apps import AppConfig


class PatientsConfig(AppConfig):
    name = "patients"
    verbose_name = "Studies and patients"

    def ready(self) -> None:
        # lazy: receivers import models, which exist only once the app registry is ready
        from patients.alerts import receivers as alert_receivers
        from patients.audit import receivers as audit_receivers  # noqa: F401  (connects the login audit)
        from patients.demo import tasks as demo_tasks  # noqa: F401  (registers the demo's seeding task)
        from patients.imaging import signals as imaging_signals  # noqa: F401  (connects file removal)
        from patients.imaging import tasks as imaging_tasks  # noqa: F401  (registers the ingest task)

        alert_receivers.connect()  # the alerts hear of scored, signed and read exams and of blood gases
