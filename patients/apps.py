from __future__ import annotations

from django.apps import AppConfig


class PatientsConfig(AppConfig):
    name = "patients"
    verbose_name = "Studies and patients"

    def ready(self) -> None:
        from patients import signals  # noqa: F401  (connects receivers)
