"""Reads, always scoped to what the user may see."""
from __future__ import annotations

from typing import Any

from django.db.models import Count, QuerySet

from patients.models import BloodGas, ClinicalInfo, Exam, Patient, Study, ZoneClip


def study_list(*, user: Any) -> QuerySet[Study]:
    qs = Study.objects.all()
    if not user.is_superuser:
        qs = qs.filter(memberships__user=user)
    return qs.annotate(patient_count=Count("patients", distinct=True)).order_by("name")


def patient_list(*, user: Any, study: Study | int | None = None) -> QuerySet[Patient]:
    qs = Patient.objects.select_related("study")
    if not user.is_superuser:
        qs = qs.filter(study__memberships__user=user)
    if study is not None:
        qs = qs.filter(study=study)
    return qs.order_by("study__name", "code")


def exam_list(*, user: Any, patient: Patient | int | None = None) -> QuerySet[Exam]:
    qs = Exam.objects.select_related("patient", "patient__study")
    if not user.is_superuser:
        qs = qs.filter(patient__study__memberships__user=user)
    if patient is not None:
        qs = qs.filter(patient=patient)
    return qs.order_by("patient__code", "acquired_at")


def clip_list(*, user: Any, exam: Exam | int | None = None) -> QuerySet[ZoneClip]:
    qs = ZoneClip.objects.select_related("exam", "exam__patient", "exam__patient__study")
    if not user.is_superuser:
        qs = qs.filter(exam__patient__study__memberships__user=user)
    if exam is not None:
        qs = qs.filter(exam=exam)
    return qs


def blood_gas_list(*, patient: Patient) -> QuerySet[BloodGas]:
    return BloodGas.objects.filter(patient=patient).order_by("sampled_at")


def clinical_info_list(*, patient: Patient) -> QuerySet[ClinicalInfo]:
    return ClinicalInfo.objects.filter(patient=patient).order_by("recorded_at")


# --- agreement ---------------------------------------------------------------------------------

OVERRIDE_RATER = "clinician-override"


def agreement_raters(*, study: Study) -> list[str]:
    """Raters with scored annotations in the study, plus the clinicians' overrides."""
    from patients.models import ZoneAnnotation

    raters = (ZoneAnnotation.objects.filter(clip__exam__patient__study=study, score__isnull=False)
              .values_list("rater", flat=True).distinct().order_by("rater"))
    return [*raters, OVERRIDE_RATER]


def agreement_models(*, study: Study) -> list[str]:
    """Model versions that scored clips of the study, the active one first, then newest first."""
    from scoring.models import ModelVersion

    return list(ModelVersion.objects.filter(jobs__exam__patient__study=study, jobs__clip_scores__isnull=False)
                .distinct().order_by("-is_active", "-created_at").values_list("version", flat=True))


def agreement_pairs(*, study: Study, rater: str, model: str) -> list[tuple[int, int, int]]:
    """(clip id, rater score, model score) for every clip of the study both scored.

    The model score is the newest ``ClipScore`` of that model version for the clip; the rater
    score is the rater's annotation, or for ``clinician-override`` the latest override.
    """
    from patients.models import ScoreOverride, ZoneAnnotation
    from scoring.models import ClipScore

    if rater == OVERRIDE_RATER:
        reference: dict[int, int] = {}
        for clip_id, score in (ScoreOverride.objects.filter(clip__exam__patient__study=study)
                               .order_by("clip_id", "-at", "-pk").values_list("clip_id", "score")):
            reference.setdefault(clip_id, score)
    else:
        reference = {cid: int(score) for cid, score in ZoneAnnotation.objects.filter(
            clip__exam__patient__study=study, rater=rater, score__isnull=False).values_list("clip_id", "score")
            if score is not None}
    predicted: dict[int, int] = {}
    for clip_id, score in (ClipScore.objects.filter(clip__exam__patient__study=study, model_version__version=model)
                           .order_by("clip_id", "-created_at", "-pk").values_list("clip_id", "score")):
        predicted.setdefault(clip_id, score)
    return [(cid, reference[cid], predicted[cid]) for cid in sorted(reference) if cid in predicted]


class AgreementQueryError(ValueError):
    """A rater or model that the study does not have; the message lists the valid ones."""


def agreement_report(*, study: Study, rater: str | None, model: str | None) -> dict[str, Any]:
    """AI-vs-rater agreement in a study (``patients.agreement``), with the choices available.

    ``model`` defaults to the active model version (else the newest that scored the study);
    ``rater`` defaults to the first rater with annotations (else the clinicians' overrides).
    """
    from patients.agreement import agreement

    raters = agreement_raters(study=study)
    models = agreement_models(study=study)
    rater = (rater or "").strip() or raters[0]
    if rater not in raters:
        raise AgreementQueryError(f"rater={rater!r} has no scores in this study; raters: {', '.join(raters)}")
    model = (model or "").strip() or None
    if model is None:
        if not models:
            raise AgreementQueryError("no model has scored this study yet; score its exams first")
        model = models[0]
    elif model not in models:
        raise AgreementQueryError(
            f"model={model!r} has not scored this study; models: {', '.join(models) or 'none'}")
    pairs = agreement_pairs(study=study, rater=rater, model=model)
    result = agreement([r for _, r, _ in pairs], [m for _, _, m in pairs])
    return {"study": study.pk, "rater": rater, "model": model, "raters": raters, "models": models,
            **result.as_dict()}


class FramesWithheld(Exception):
    """The user may not see this clip's pixels (the message says why)."""


def _sector_mask(clip: ZoneClip, frames: Any) -> Any:
    """The clip's ultrasound sector (bool [H, W]), or None when none is found; cached per clip."""
    import numpy as np
    from django.core.cache import cache

    from patients.imaging.core.sector import find_sector

    key = f"lusweb:sector:{clip.pk}:{clip.sha256}"
    hit = cache.get(key)
    if hit is not None:
        found, shape, packed = hit
        return np.unpackbits(packed)[: shape[0] * shape[1]].reshape(shape).astype(bool) if found else None
    sector = find_sector(frames)
    mask = sector.mask
    cache.set(key, (sector.found, mask.shape, np.packbits(mask)), timeout=None)
    return mask if sector.found else None


def clip_frame_for(*, clip: ZoneClip, user: Any, index: int) -> Any:
    """Frame ``index`` of the clip (uint8 [H, W]) as ``user`` may see it; ``IndexError`` outside the clip.

    Clips of a study that keeps uploads as sent (no de-identification) still carry burned-in
    text - names, dates, hospital - outside the ultrasound sector. Users who may not see
    identifying data get those pixels blacked out (the sector itself is untouched, as in
    de-identification at ingest); when no sector can be found the frames are withheld from them
    (:class:`FramesWithheld`) rather than shown with whatever text they carry.
    """
    from patients import permissions

    frames = clip.load_frames()
    if not 0 <= index < frames.shape[0]:
        raise IndexError(f"frame {index} is outside 0-{frames.shape[0] - 1}")
    frame = frames[index]
    if clip.deidentified or permissions.can_see_identifying(user, clip.exam.patient.study_id):
        return frame
    mask = _sector_mask(clip, frames)
    if mask is None:
        raise FramesWithheld(
            "This study keeps clips as sent (not de-identified) and no ultrasound sector was found in this clip "
            "to hide the burned-in text around it, so its images are shown to clinicians and study admins only.")
    out = frame.copy()
    out[~mask] = 0
    return out
