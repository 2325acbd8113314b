"""Reading reads: override histories and the effective (latest) override per clip."""
from __future__ import annotations

from collections.abc import Sequence

from django.db.models import QuerySet

from patients.imaging.models import ZoneClip
from patients.readings.models import ScoreOverride, ZoneAnnotation
from patients.records.models import Exam
from patients.studies.models import Study

#: The "rater" name of clinicians' overrides in agreement reports (reserved for annotations).
OVERRIDE_RATER = "clinician-override"


def current_override(*, clip: ZoneClip) -> ScoreOverride | None:
    """The clip's effective override: the latest one."""
    return ScoreOverride.objects.filter(clip=clip).order_by("-at", "-pk").first()


def override_history(*, clip: ZoneClip) -> QuerySet[ScoreOverride]:
    """The clip's overrides, newest (the one in effect) first."""
    return (ScoreOverride.objects.filter(clip=clip).select_related("by", "clip__exam__patient")
            .order_by("-at", "-pk"))


def exam_overrides(*, exam: Exam) -> dict[int, ScoreOverride]:
    """clip id -> the effective override of each clip of the exam that has one."""
    latest: dict[int, ScoreOverride] = {}
    for o in ScoreOverride.objects.filter(clip__exam=exam).select_related("by").order_by("clip_id", "-at", "-pk"):
        latest.setdefault(o.clip_id, o)
    return latest


def override_scores(*, exam_ids: Sequence[int] | None = None, study: Study | None = None) -> dict[int, int]:
    """clip id -> the effective override score, for clips of ``exam_ids`` or of ``study``."""
    qs = ScoreOverride.objects.all()
    if exam_ids is not None:
        qs = qs.filter(clip__exam_id__in=exam_ids)
    if study is not None:
        qs = qs.filter(clip__exam__patient__study=study)
    latest: dict[int, int] = {}
    for clip_id, score in qs.order_by("clip_id", "-at", "-pk").values_list("clip_id", "score"):
        latest.setdefault(clip_id, score)
    return latest


def annotation_scores(*, study: Study, rater: str) -> dict[int, int]:
    """clip id -> the score ``rater`` gave, for the study's clips the rater scored."""
    return {cid: int(score) for cid, score in ZoneAnnotation.objects.filter(
        clip__exam__patient__study=study, rater=rater, score__isnull=False).values_list("clip_id", "score")
        if score is not None}


def annotation_raters(*, study: Study) -> list[str]:
    """Raters with scored annotations in the study, by name."""
    return list(ZoneAnnotation.objects.filter(clip__exam__patient__study=study, score__isnull=False)
                .values_list("rater", flat=True).distinct().order_by("rater"))
