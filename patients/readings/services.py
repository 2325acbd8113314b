"""Reading writes: clinicians' score overrides and raters' annotations of clips."""
from __future__ import annotations

from typing import Any

from django.db import transaction

from lusweb.errors import ServiceError
from patients.audit.models import AuditAction
from patients.audit.services import audit_record, diff
from patients.imaging.models import ZoneClip
from patients.readings import hooks
from patients.readings.models import ScoreOverride, ZoneAnnotation
from patients.readings.selectors import OVERRIDE_RATER, current_override
from patients.studies import permissions


def _override_value(score: Any) -> int:
    """The score as an int 0-3 (Soldati scale); a fraction or anything else is refused."""
    try:
        value = int(score)
    except (TypeError, ValueError):
        raise ServiceError(f"score {score!r} is not an integer 0-3", code="bad_score") from None
    if isinstance(score, float) and score != value or not 0 <= value <= 3:
        raise ServiceError(f"score {score!r} is outside 0-3 (Soldati scale)", code="bad_score")
    return value


def score_override_create(*, clip: ZoneClip, score: Any, reason: str, by: Any) -> ScoreOverride:
    """A clinician or study admin sets a zone's score (0-3) with a reason; the latest override wins
    and earlier ones stay as history. Audited with the previous effective score (the previous
    override, else the AI's current score from :func:`patients.readings.hooks.ai_score`)."""
    study = clip.exam.study
    permissions.require_write(by, study)
    value = _override_value(score)
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError("an override needs a reason", code="missing_reason")
    previous = current_override(clip=clip)
    ai = hooks.ai_score(clip)
    with transaction.atomic():
        override = ScoreOverride.objects.create(clip=clip, score=value, reason=reason, by=by)
        audit_record(actor=by, action=AuditAction.OVERRIDE, study=study, obj=clip, changes={
            "score": {"old": previous.score if previous else ai, "new": value},
            "source": {"old": "override" if previous else ("ai" if ai is not None else None), "new": "override"},
            "reason": {"old": previous.reason if previous else None, "new": reason},
        })
    return override


def annotation_set(*, clip: ZoneClip, rater: str, by: Any, score: int | None = None,
                   findings: dict[str, Any] | None = None, comment: str = "") -> tuple[ZoneAnnotation, bool]:
    """Record (or replace) a rater's reading of a clip. Returns (annotation, created)."""
    study = clip.exam.study
    permissions.require_write(by, study)
    rater = (rater or "").strip()
    if not rater or len(rater) > 64:
        raise ServiceError("a rater name of 1-64 characters is required", code="bad_rater")
    if rater == OVERRIDE_RATER:
        raise ServiceError(f"'{OVERRIDE_RATER}' is reserved for score overrides", code="bad_rater")
    if score is not None and not 0 <= int(score) <= 3:
        raise ServiceError(f"score {score!r} is outside 0-3", code="bad_score")
    existing = ZoneAnnotation.objects.filter(clip=clip, rater=rater).first()
    new = {"score": score, "findings": findings or {}, "comment": comment}
    if existing is not None:
        changes = diff({"score": existing.score, "findings": existing.findings, "comment": existing.comment}, new)
        if not changes:
            return existing, False
    with transaction.atomic():
        annotation, created = ZoneAnnotation.objects.update_or_create(
            clip=clip, rater=rater, defaults={**new, "created_by": by})
        audit_record(actor=by, action=AuditAction.CREATE if created else AuditAction.UPDATE, study=study,
                     obj=annotation, changes=diff({}, new) if created else changes)
    return annotation, created
