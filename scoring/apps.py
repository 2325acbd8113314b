from __future__ import annotations

from django.apps import AppConfig


class ScoringConfig(AppConfig):
    name = "scoring"
    verbose_name = "Scoring"

    def ready(self) -> None:
        """Subscribe to the records' hooks: scoring sits above them, so they never import it."""
        # lazy: these modules import models, which exist only once the app registry is ready
        from patients.imaging.signals import clip_stored
        from patients.readings import hooks
        from scoring import receivers, selectors, tasks  # noqa: F401  (tasks: registers the Celery tasks)

        clip_stored.connect(receivers.queue_scoring_of_stored_clip, dispatch_uid="scoring.queue_scoring")
        hooks.register_ai_score_source(selectors.clip_ai_score)
