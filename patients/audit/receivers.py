"""Logins are audited (connected by ``PatientsConfig.ready``)."""
from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.http import HttpRequest

from patients.audit.models import AuditAction
from patients.audit.services import audit_record, client_ip


@receiver(user_logged_in)
def _audit_login(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    audit_record(actor=user, action=AuditAction.LOGIN, object_type="user", object_id=user.pk,
                 ip=client_ip(request) if request is not None else None)
