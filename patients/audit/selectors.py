"""Reading the audit trail: a study's events, filtered as the audit page and API ask."""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from django.db import models
from django.db.models import QuerySet
from django.utils import timezone

from patients.audit.models import AuditAction, AuditEvent


class AuditFilterError(ValueError):
    """A filter value that cannot be used; the message names the parameter."""


def _date(name: str, raw: str) -> dt.date:
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise AuditFilterError(f"{name}={raw!r} is not a date (expected YYYY-MM-DD)") from None


def audit_events(*, study: models.Model, query: Mapping[str, Any]) -> QuerySet[AuditEvent]:
    """The study's events, newest first, filtered by ``action``, ``user``, ``since`` and ``until``
    (inclusive dates). Raises :class:`AuditFilterError` for a bad value."""
    qs = AuditEvent.objects.filter(study_id=study.pk).select_related("actor")
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
