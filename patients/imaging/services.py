"""Clip writes besides ingest (``patients.imaging.ingest``): deletion."""
from __future__ import annotations

from typing import Any

from django.db import transaction

from patients.audit.models import AuditAction
from patients.audit.services import audit_record
from patients.imaging.models import ZoneClip
from patients.studies import permissions


def clip_delete(*, clip: ZoneClip, by: Any) -> None:
    """Delete a clip (writers); its files go once the deletion commits (``imaging.signals``)."""
    permissions.require_write(by, clip.exam.study)
    with transaction.atomic():
        audit_record(actor=by, action=AuditAction.DELETE, study=clip.exam.study, obj=clip,
                     changes={"exam": {"old": clip.exam_id, "new": None}, "zone": {"old": clip.zone, "new": None},
                              "sha256": {"old": clip.sha256, "new": None}})
        clip.delete()
