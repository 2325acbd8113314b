from __future__ import annotations

from django.apps import AppConfig


class ScoringConfig(AppConfig):
    name = "scoring"
    verbose_name = "Scoring"

    def ready(self) -> None:
        """Subscribe to the lower layers' signals: scoring sits above them, so they never import it."""
        # lazy: these modules import models, which exist only once the app registry is ready
        from patients.imaging.signals import clip_stored
        from patients.readings.signals import reading_saved
        from scoring import receivers, tasks  # noqa: F401  (tasks: registers the Celery tasks)

        clip_stored.connect(receivers.queue_scoring_of_stored_clip, dispatch_uid="scoring.queue_scoring")
        reading_saved.connect(receivers.refresh_severity_of_read_exam, dispatch_uid="scoring.refresh_severity")
