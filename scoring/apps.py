from __future__ import annotations

from django.apps import AppConfig


class ScoringConfig(AppConfig):
    name = "scoring"
    verbose_name = "Scoring"

    def ready(self) -> None:
        """Subscribe to the lower layers' signals and add the worklist's label-more order: scoring sits
        above them, so they never import it."""
        # lazy: these modules import models, which exist only once the app registry is ready
        from django.db.models.signals import post_delete

        from patients.imaging.models import ZoneClip
        from patients.imaging.signals import clip_stored
        from patients.readings.signals import reading_saved
        from patients.readings.worklist import worklist_order_register
        from scoring import label_more, prepared, receivers, tasks  # noqa: F401  (tasks: registers the Celery tasks)

        worklist_order_register(label_more.ORDER)

        clip_stored.connect(receivers.queue_scoring_of_stored_clip, dispatch_uid="scoring.queue_scoring")
        clip_stored.connect(prepared.prepare_stored_clip, dispatch_uid="scoring.prepare_clip")
        post_delete.connect(prepared.remove_prepared_of_deleted_clip, sender=ZoneClip,
                            dispatch_uid="scoring.remove_prepared")
        reading_saved.connect(receivers.refresh_severity_of_read_exam, dispatch_uid="scoring.refresh_severity")
