"""Remove stored files when their row goes, but only once the deletion has committed."""
from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from patients.models import ZoneClip


@receiver(post_delete, sender=ZoneClip)
def _delete_clip_files(sender: type[ZoneClip], instance: ZoneClip, **kwargs: Any) -> None:
    names = [(f.storage, f.name) for f in (instance.file, instance.frames) if f and f.name]

    def remove() -> None:
        for storage, name in names:
            storage.delete(name)

    transaction.on_commit(remove)
