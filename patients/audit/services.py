"""The audit trail's one writer: :func:`audit_record`.

Services and views call :func:`audit_record` for every create, change (old and new values),
delete, score override, export (with its row count), view of identifying data and login. The
client address comes from :class:`~patients.audit.middleware.AuditContextMiddleware`; without it
``ip`` stays empty.
"""
from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TypeVar

from django.db import models, transaction
from django.http import HttpRequest
from django.utils import timezone

from patients.audit.models import AuditAction, AuditEvent

M = TypeVar("M", bound=models.Model)

_client_ip: contextvars.ContextVar[str | None] = contextvars.ContextVar("lusweb_audit_ip", default=None)


def client_ip(request: HttpRequest) -> str | None:
    """The peer address of the request (``REMOTE_ADDR``; a proxy must set it, e.g. Daphne's
    ``--proxy-headers``) - never a client-supplied header, which anyone could forge."""
    addr = request.META.get("REMOTE_ADDR") or None
    return addr if addr and len(addr) <= 45 else None


@contextlib.contextmanager
def request_ip(ip: str | None) -> Iterator[None]:
    """While the block runs, events recorded without an explicit ``ip`` get this one."""
    token = _client_ip.set(ip)
    try:
        yield
    finally:
        _client_ip.reset(token)


def _plain(value: Any) -> Any:
    """A JSON-safe rendering of a field value for the ``changes`` column."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, models.Model):
        return value.pk
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


def diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{"field": {"old": ..., "new": ...}}`` for the fields whose value changed."""
    out: dict[str, dict[str, Any]] = {}
    for key in sorted(set(old) | set(new)):
        before, after = _plain(old.get(key)), _plain(new.get(key))
        if before != after:
            out[key] = {"old": before, "new": after}
    return out


def snapshot(obj: models.Model, fields: Iterable[str] | None = None) -> dict[str, Any]:
    """The concrete field values of ``obj`` (foreign keys as ids), for :func:`diff`."""
    names = fields or [f.attname for f in obj._meta.concrete_fields]
    return {name: _plain(getattr(obj, name)) for name in names}


def audit_record(
    *,
    actor: Any,
    action: str,
    study: models.Model | None = None,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: str | int = "",
    changes: Mapping[str, Any] | None = None,
    row_count: int | None = None,
    ip: str | None = None,
) -> AuditEvent:
    """Append one event. ``obj`` fills ``object_type`` / ``object_id`` when they are not given."""
    if action not in AuditAction.values:
        raise ValueError(f"unknown audit action {action!r}; expected one of {', '.join(AuditAction.values)}")
    if obj is not None:
        object_type = object_type or obj._meta.model_name or ""
        object_id = object_id or obj.pk or ""
    user = actor if getattr(actor, "is_authenticated", False) else None
    return AuditEvent.objects.create(
        at=timezone.now(), actor=user, actor_username=getattr(user, "username", "") or "",
        study_id=study.pk if study is not None else None, study_name=getattr(study, "name", ""), action=action,
        object_type=object_type[:40], object_id=str(object_id)[:64], changes=_plain(dict(changes or {})),
        row_count=row_count, ip=ip if ip is not None else _client_ip.get(),
    )


def audit_finish_export(*, event: AuditEvent, row_count: int, complete: bool) -> None:
    """Close an export event opened before streaming: how many rows actually went out."""
    changes = dict(event.changes or {})
    changes["complete"] = complete
    AuditEvent.objects.filter(pk=event.pk).update(row_count=row_count, changes=changes)


def create_audited(model: type[M], *, audited_in: models.Model, by: Any, tracked: Iterable[str],
                   **fields: Any) -> M:
    """Create a row of ``model`` from ``fields`` and audit (in study ``audited_in``) its ``tracked``
    fields as new values, in one transaction."""
    with transaction.atomic():
        obj = model._default_manager.create(**fields)
        audit_record(actor=by, action=AuditAction.CREATE, study=audited_in, obj=obj,
                     changes=diff({}, snapshot(obj, tracked)))
    return obj


def update_audited(obj: models.Model, *, fields: Mapping[str, Any], tracked: Iterable[str], study: models.Model,
                   by: Any) -> None:
    """Apply ``fields`` to ``obj``; save them and audit the old and new values of ``tracked`` only
    when something changed."""
    before = snapshot(obj, tracked)
    for key, value in fields.items():
        setattr(obj, key, value)
    changes = diff(before, snapshot(obj, tracked))
    if changes:
        with transaction.atomic():
            obj.save(update_fields=[*fields])
            audit_record(actor=by, action=AuditAction.UPDATE, study=study, obj=obj, changes=changes)
