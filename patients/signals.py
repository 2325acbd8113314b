"""Remove stored files when their row goes (once the deletion has committed); audit logins."""
from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in
from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.http import HttpRequest

from patients.models import ZoneClip


@receiver(post_delete, sender=ZoneClip)
def _delete_clip_files(sender: type[ZoneClip], instance: ZoneClip, **kwargs: Any) -> None:
    names = [(f.storage, f.name) for f in (instance.file, instance.frames, instance.source) if f and f.name]

    def remove() -> None:
        for storage, name in names:
            storage.delete(name)

    transaction.on_commit(remove)


@receiver(user_logged_in)
def _audit_login(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    from patients.audit import audit_record, client_ip
    from patients.models import AuditAction

    audit_record(actor=user, action=AuditAction.LOGIN, object_type="user", object_id=user.pk,
                 ip=client_ip(request) if request is not None else None)
