"""The audit trail: one writer (:func:`audit_record`), one reader (:func:`audit_events`).

Services and views call :func:`audit_record` for every create, change (old and new values),
delete, score override, export (with its row count), view of identifying data and login. The
client address comes from :class:`AuditContextMiddleware` (add it to ``MIDDLEWARE`` after the
authentication middleware); without it ``ip`` stays empty.
"""
from __future__ import annotations

import contextvars
import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from patients.models import AuditAction, AuditEvent, Study

_client_ip: contextvars.ContextVar[str | None] = contextvars.ContextVar("lusweb_audit_ip", default=None)


def client_ip(request: HttpRequest) -> str | None:
    """The peer address of the request (``REMOTE_ADDR``; a proxy must set it, e.g. Daphne's
    ``--proxy-headers``) - never a client-supplied header, which anyone could forge."""
    addr = request.META.get("REMOTE_ADDR") or None
    return addr if addr and len(addr) <= 45 else None


class AuditContextMiddleware:
    """Makes the client address of the current request available to :func:`audit_record`."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = _client_ip.set(client_ip(request))
        try:
            return self.get_response(request)
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
    study: Study | None = None,
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
        study=study, study_name=study.name if study is not None else "", action=action,
        object_type=object_type[:40], object_id=str(object_id)[:64], changes=_plain(dict(changes or {})),
        row_count=row_count, ip=ip if ip is not None else _client_ip.get(),
    )


def audit_finish_export(*, event: AuditEvent, row_count: int, complete: bool) -> None:
    """Close an export event opened before streaming: how many rows actually went out."""
    changes = dict(event.changes or {})
    changes["complete"] = complete
    AuditEvent.objects.filter(pk=event.pk).update(row_count=row_count, changes=changes)


# --- reading -----------------------------------------------------------------------------------


class AuditFilterError(ValueError):
    """A filter value that cannot be used; the message names the parameter."""


def _date(name: str, raw: str) -> dt.date:
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise AuditFilterError(f"{name}={raw!r} is not a date (expected YYYY-MM-DD)") from None


def audit_events(*, study: Study, query: Mapping[str, Any]) -> QuerySet[AuditEvent]:
    """The study's events, newest first, filtered by ``action``, ``user``, ``since`` and ``until``
    (inclusive dates). Raises :class:`AuditFilterError` for a bad value."""
    qs = AuditEvent.objects.filter(study=study).select_related("actor")
    action = (query.get("action") or "").strip()
    if action:
        if action not in AuditAction.values:
            raise AuditFilterError(f"action={action!r}: expected one of {', '.join(AuditAction.values)}")
        qs = qs.filter(action=action)
    user = (query.get("user") or "").strip()
    if user:
        qs = qs.filter(actor_username=user)
    since_raw = (query.get("since") or "").strip()
    until_raw = (query.get("until") or "").strip()
    since = _date("since", since_raw) if since_raw else None
    until = _date("until", until_raw) if until_raw else None
    if since and until and since > until:
        raise AuditFilterError(f"since={since_raw} is after until={until_raw}")
    tz = timezone.get_current_timezone()
    if since:
        qs = qs.filter(at__gte=dt.datetime.combine(since, dt.time.min, tzinfo=tz))
    if until:
        qs = qs.filter(at__lt=dt.datetime.combine(until + dt.timedelta(days=1), dt.time.min, tzinfo=tz))
    return qs.order_by("-at", "-pk")
