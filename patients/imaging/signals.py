"""Imaging's signals: ``clip_stored`` for the layers above, and removal of a clip's files.

``clip_stored`` is how ingest announces a new clip without knowing who listens (scoring queues
the exam in ``ScoringConfig.ready``). It is sent inside the transaction that makes the clip
``ready`` (the ingest worker's check, ``patients.imaging.process``), once the row is saved, with
``clip`` and ``by`` (the uploading user): what a receiver writes commits with the clip or not at
all, and a receiver that raises refuses the upload (the clip fails with its message). It is never
sent for a pending or failed upload. Work outside the database (a Celery message) belongs in
``transaction.on_commit``.
"""
from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import Signal, receiver

from patients.imaging.models import ZoneClip
from patients.imaging.video import video_names

clip_stored = Signal()


@receiver(post_delete, sender=ZoneClip)
def _delete_clip_files(sender: type[ZoneClip], instance: ZoneClip, **kwargs: Any) -> None:
    """Remove the stored files once the deletion has committed (a rolled-back delete keeps them)."""
    names = [(f.storage, f.name) for f in (instance.file, instance.frames, instance.source) if f and f.name]
    names += [(instance.frames.storage, name) for name in video_names(instance)]  # the viewer's, if made

    def remove() -> None:
        for storage, name in names:
            storage.delete(name)  # FileSystemStorage ignores names that are not there

    transaction.on_commit(remove)
