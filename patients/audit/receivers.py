"""Logins and sign-in lockouts are audited (connected by ``PatientsConfig.ready``)."""
from __future__ import annotations

from typing import Any

from axes.helpers import get_cool_off
from axes.signals import user_locked_out
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.http import HttpRequest

from patients.audit.models import AuditAction
from patients.audit.services import audit_record, client_ip


@receiver(user_logged_in)
def _audit_login(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    audit_record(actor=user, action=AuditAction.LOGIN, object_type="user", object_id=user.pk,
                 ip=client_ip(request) if request is not None else None)


@receiver(user_locked_out)
def _audit_lockout(sender: Any, request: Any, username: str | None, ip_address: str | None, **kwargs: Any) -> None:
    """One event when a lockout begins (django-axes also signals every refused attempt during it,
    which has no new failure count). The actor is the account whose name was tried, when it
    exists; the name as typed is kept either way."""
    failures = getattr(request, "axes_failures_since_start", None)
    if failures is None:
        return
    user = get_user_model().objects.filter(username=username).first() if username else None
    cool_off = get_cool_off(request)
    audit_record(actor=user, action=AuditAction.LOCKOUT, object_type="user", object_id=user.pk if user else "",
                 changes={"username": username or "", "failures": failures, "path": getattr(request, "path", ""),
                          "cooloff_minutes": (cool_off.total_seconds() / 60) if cool_off else None},
                 ip=ip_address)
