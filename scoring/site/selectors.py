"""Site-model reads: which model a study scores with, its labelled clips, its candidates."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.files.storage import default_storage
from django.db.models import Q

from patients.imaging.models import ZoneClip
from patients.readings.selectors import record_scores, review_states
from patients.records.models import Exam
from patients.studies.models import Study
from scoring.models import ModelVersion, SiteTraining
from scoring.study_model import study_model_id


@dataclass(frozen=True)
class LabelledClip:
    """A clip with a signed clinician reading: the training label of a site model."""

    clip_id: int
    path: str
    sha256: str
    patient: str  # the patient's code (the CV groups clips by it)
    zone: str
    score: int
    findings: dict[str, bool]


def labelled_clips(*, study: Study) -> list[LabelledClip]:
    """The study's clips whose score of record is a clinician's (or an adjudication) in an exam
    signed and not changed since (``reviewed``): the readings a ward stands behind. Ordered by
    patient and clip id, so two runs list them alike."""
    exams = dict(Exam.objects.filter(patient__study=study).values_list("pk", "patient__code"))
    signed = [e for e, state in review_states(exam_ids=list(exams)).items() if state.status == "reviewed"]
    clips = {c.pk: c for c in ZoneClip.objects.filter(exam_id__in=signed).exclude(file="")}
    out = []
    for exam_id, zones in record_scores(exam_ids=signed).items():
        for record in zones.values():
            clip = clips.get(record.clip_id)
            if clip is None or record.source != "clinician" or record.score is None:
                continue
            out.append(LabelledClip(clip.pk, default_storage.path(str(clip.file.name)), clip.sha256, exams[exam_id],
                                    clip.zone, int(record.score), dict(record.findings)))
    return sorted(out, key=lambda c: (c.patient, c.clip_id))


def _figures(meta: dict[str, Any], key: str) -> dict[str, Any] | None:
    """``{"accuracy", "within1", "spearman", "qwk", "n_patients", "n_clips"}`` of a CV block (means)."""
    block = meta.get(key)
    if not isinstance(block, dict) or not block:
        return None
    out: dict[str, Any] = {}
    for name, src in (("accuracy", "accuracy"), ("within1", "within1"), ("spearman", "spearman_expected"),
                      ("qwk", "qwk"), ("ece", "ece")):
        value = block.get(src)
        out[name] = round(float(value["mean"]), 4) if isinstance(value, dict) and "mean" in value else None
    out["n_patients"] = block.get("n_patients")
    out["n_clips"] = block.get("n_clips")
    for extra in ("in_sample", "clips_seen_in_training", "seeds", "k"):
        if extra in block:
            out[extra] = block[extra]
    return out


def site_model_row(version: ModelVersion, *, current_id: int | None) -> dict[str, Any]:
    """One model of a study's site-model list (see :func:`site_models`)."""
    meta: dict[str, Any] = version.metadata or {}
    raw = meta.get("site")
    site: dict[str, Any] = raw if isinstance(raw, dict) else {}
    return {
        "version": version.version, "site_model": version.study_id is not None, "active": version.pk == current_id,
        "created_at": version.created_at, "cv": _figures(meta, "cv"),
        "champion": site.get("champion"), "champion_cv": _figures(site, "champion_cv"),
        "learning_curve": site.get("learning_curve"), "include_shipped": site.get("include_shipped"),
        "trained_by": site.get("trained_by"),
    }


def site_models(*, study: Study) -> dict[str, Any]:
    """The study's model (``active``), its site-model candidates newest first, and its trainings."""
    current_id = study_model_id(study.pk)
    current = ModelVersion.objects.filter(pk=current_id).first() if current_id else None
    candidates = ModelVersion.objects.filter(study=study).order_by("-created_at", "-pk")
    trainings = SiteTraining.objects.filter(study=study).select_related("candidate", "champion")[:20]
    return {
        "study": study.pk,
        "active": site_model_row(current, current_id=current_id) if current else None,
        "candidates": [site_model_row(v, current_id=current_id) for v in candidates],
        "trainings": [site_training_row(t) for t in trainings],
    }


def site_training_row(t: SiteTraining) -> dict[str, Any]:
    """A training job as the API and the page show it."""
    return {"job": t.pk, "status": t.status, "progress": round(t.progress, 3), "step": t.step, "error": t.error,
            "include_shipped": t.include_shipped, "champion": t.champion.version,
            "candidate": t.candidate.version if t.candidate else None, "created_at": t.created_at,
            "finished_at": t.finished_at}


def rollback_targets(*, study: Study) -> list[ModelVersion]:
    """Versions a study may roll back to: the shipped ones and its own site models."""
    return list(ModelVersion.objects.filter(Q(study__isnull=True) | Q(study=study)).order_by("-created_at"))


def shipped_model_rows(*, study: Study) -> list[dict[str, Any]]:
    """The models shipped with the code a study may choose (the default scorer, MCRFNet, Reg-STN,
    the cascade), each with its architecture, cross-validated figures (the same patient-grouped
    folds for all) and whether the study scores with it now."""
    from scoring.engine import shipped_models  # lazy: reading weights files needs torch

    current_id = study_model_id(study.pk)
    registered = dict(ModelVersion.objects.filter(study__isnull=True).values_list("version", "pk"))
    rows = []
    for m in shipped_models():
        version = str(m.meta["version"])
        arch = str(m.meta.get("arch") or "lite0")
        rows.append({"name": m.name, "version": version, "arch": arch, "format": m.format,
                     "architecture": m.meta.get("architecture"), "cv": _figures(m.meta, "cv"),
                     "registered": version in registered,
                     "active": current_id is not None and registered.get(version) == current_id})
    return rows
