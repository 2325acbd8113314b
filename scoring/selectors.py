"""Scoring reads: the current scores of an exam, job details, per-frame results."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from patients.imaging.models import ZoneClip
from patients.readings.selectors import ZoneRecord, open_blind_exams, record_scores
from patients.records.models import Exam
from patients.studies.protocols import get_protocol
from scoring.core.inference.exam import exam_score
from scoring.models import ClipScore, ExamScore, JobStatus, ModelVersion, ScoringJob


def latest_job(*, exam: Exam) -> ScoringJob | None:
    return ScoringJob.objects.filter(exam=exam).select_related("model_version").order_by("-created_at", "-pk").first()


def current_exam_score(*, exam: Exam) -> ExamScore | None:
    """The newest result of the active model; else the newest result of any model."""
    scores = ExamScore.objects.filter(exam=exam).select_related("model_version", "job").order_by("-created_at", "-pk")
    active = scores.filter(model_version__is_active=True).first()
    return active or scores.first()


def score_confidence(probs: Any, score: int) -> float | None:
    """The model's probability of the score it gave (what a reader should weigh it by)."""
    try:
        return round(float(probs[score]), 3)
    except (IndexError, KeyError, TypeError, ValueError):
        return None


def _domain(extra: Any) -> dict[str, Any]:
    """``in_domain`` / ``domain_distance`` of a stored score (None for weights without the check)."""
    d = extra.get("domain") if isinstance(extra, dict) else None
    if not isinstance(d, dict):
        return {"in_domain": None, "domain_distance": None}
    return {"in_domain": bool(d.get("in_domain")), "domain_distance": d.get("distance")}


def _cv_figure(cv: dict[str, Any], key: str) -> dict[str, Any] | None:
    """``{"mean", "sd", "per_seed"}`` of one metric of a weights' CV block, if it is there."""
    value = cv.get(key)
    if isinstance(value, dict) and isinstance(value.get("mean"), int | float):
        return value
    return None


def model_cv_summary(metadata: dict[str, Any] | None) -> dict[str, float] | None:
    """Cross-validated accuracy, within-1 and calibration of a model, from its weights' metadata.

    None when the weights carry no CV (e.g. a model trained without it); keys missing from older
    weights (``ece`` before v3's retraining) are left out.
    """
    cv = (metadata or {}).get("cv")
    if not isinstance(cv, dict):
        return None
    out: dict[str, float] = {}
    for key in ("accuracy", "within1", "spearman", "ece", "brier"):
        figure = _cv_figure(cv, key)
        if figure is not None:
            out[key] = round(float(figure["mean"]), 3)
    if isinstance(cv.get("n_patients"), int):
        out["n_patients"] = cv["n_patients"]
    return out or None


def record_summary(zone_scores: Mapping[str, int | None], codes: Sequence[str]) -> dict[str, Any]:
    """The exam headline of zone scores (``scoring.core.inference.exam.exam_score``): luss, max_luss,
    mean_score, worst_zone, worst_score, zones_ge2 (a count), coverage, missing_zones. Zones outside
    ``codes`` (another protocol's) are counted as extra expected zones rather than refused."""
    expected = list(codes) + [z for z in zone_scores if z not in codes]
    s = exam_score(dict(zone_scores), expected=expected)
    return {
        "luss": s.global_score, "max_luss": 3 * len(codes),
        "mean_score": s.mean_zone_score, "worst_zone": s.worst_zone, "worst_score": s.worst_score,
        "zones_ge2": len(s.zones_ge2), "coverage": len(s.present) / len(codes) if codes else 0.0,
        "missing_zones": [z for z in codes if z not in s.present],
    }


def _zone_payload(record: ZoneRecord, clip_score: dict[str, Any] | None, hidden: bool) -> dict[str, Any]:
    """One zone of the ``scores`` block: the record with the AI's reading beside it."""
    ai = None if hidden else clip_score
    return {
        "zone": record.zone, "clip": record.clip_id, "score": record.score, "source": record.source,
        "kind": record.kind, "ai_score": record.ai_score, "reader": record.reader, "read_at": record.read_at,
        "findings": record.findings, "blind": record.blind,
        "probs": ai["probs"] if ai else None,
        "confidence": score_confidence(ai["probs"], ai["score"]) if ai else record.ai_confidence,
        "ai_findings": ai["findings"] if ai else None, "aggregator": ai["aggregator"] if ai else None,
        **(_domain(ai["extra"]) if ai else {"in_domain": None, "domain_distance": None}),
    }


def exam_scores_payload(*, exam: Exam, user: Any = None) -> dict[str, Any]:
    """The ``scores`` block of ``GET /api/v1/exams/<id>/``: the headline from the score of record
    (``luss`` and the rest) and the AI's sum beside it (``luss_ai``); per zone the record score, its
    source and the AI's reading. During ``user``'s blind read of the exam the AI is left out."""
    job = latest_job(exam=exam)
    result = current_exam_score(exam=exam)
    codes = get_protocol(exam.protocol).codes
    hidden = bool(open_blind_exams(user=user, exam_ids=[exam.pk]))
    records = record_scores(exam_ids=[exam.pk], user=user)[exam.pk]
    order = {code: i for i, code in enumerate(codes)}
    read = sorted((r for r in records.values() if r.score is not None), key=lambda r: (order.get(r.zone, 99), r.zone))
    clip_scores: dict[int, dict[str, Any]] = {}
    if result is not None and not hidden:
        # Not ``extra`` whole: it holds the six-class values and the severity features (kilobytes).
        for c in ClipScore.objects.filter(job=result.job_id).values("clip_id", "score", "probs", "findings",
                                                                    "aggregator", "extra__domain"):
            row: dict[str, Any] = dict(c)
            row["extra"] = {"domain": row.pop("extra__domain")}
            clip_scores[row["clip_id"]] = row
    summary = record_summary({r.zone: r.score for r in read}, codes) if read else dict.fromkeys(
        ("luss", "max_luss", "mean_score", "worst_zone", "worst_score", "zones_ge2", "coverage", "missing_zones"))
    ai_known = [r.ai_score for r in records.values() if r.ai_score is not None]
    payload: dict[str, Any] = {
        "status": job.status if job else "not_scored", "job": job.pk if job else None,
        "progress": job.progress if job else 0.0, "error": job.error if job else "",
        **summary, "luss_ai": sum(ai_known) if ai_known and not hidden else None,
        "reviewed_zones": sum(1 for r in read if r.source == "clinician"),
        "model_version": None, "model_cv": None, "out_of_domain_zones": None,
        "zones": [_zone_payload(r, clip_scores.get(r.clip_id), hidden) for r in read],
    }
    if result is not None and not hidden:
        payload.update({"scored_job": result.job_id, "model_version": result.model_version.version,
                        "model_cv": model_cv_summary(result.model_version.metadata)})
        checked = [z for z in payload["zones"] if z["in_domain"] is not None]
        payload["out_of_domain_zones"] = [z["zone"] for z in checked if not z["in_domain"]] if checked else None
    if job is not None and result is not None and job.pk != result.job_id and job.status != JobStatus.SUCCEEDED:
        payload["status"] = job.status  # a newer job is queued or running; the shown scores are older
    return payload


def current_clip_score(*, clip: ZoneClip) -> ClipScore | None:
    """The clip's current score: the newest of the active model, else the newest of any model."""
    return (ClipScore.objects.filter(clip=clip).select_related("model_version")
            .order_by("-model_version__is_active", "-created_at", "-pk").first())


def clip_frames_payload(*, clip: ZoneClip, hidden: bool = False) -> dict[str, Any]:
    """Per-frame probabilities and scores of the clip's current score (``hidden``: none, as for a
    user reading the exam blind)."""
    score = None if hidden else current_clip_score(clip=clip)
    if score is None:
        return {"clip": clip.pk, "zone": clip.zone, "frame_count": clip.frame_count, "fps": clip.fps,
                "model_version": None, "confidence": None, "in_domain": None, "domain_distance": None,
                "frame_probs": [], "frame_scores": [], "expected_scores": []}
    probs = score.frame_probs
    return {
        "clip": clip.pk, "zone": clip.zone, "frame_count": clip.frame_count, "fps": clip.fps,
        "model_version": score.model_version.version, "clip_score": score.score, "clip_probs": score.probs,
        "findings": score.findings, "aggregator": score.aggregator,
        "confidence": score_confidence(score.probs, score.score), **_domain(score.extra),
        "frame_probs": [[round(float(p), 4) for p in row] for row in probs],
        "frame_scores": [int(i) for i in probs.argmax(axis=1)],
        "expected_scores": [round(float(v), 4) for v in probs @ [0.0, 1.0, 2.0, 3.0]],
    }


# Metrics of the cross-validation block of a weights file, in the order a card lists them.
CARD_METRICS: tuple[tuple[str, str], ...] = (
    ("accuracy", "Accuracy (exact score)"),
    ("within1", "Within one point"),
    ("spearman", "Spearman (hard scores)"),
    ("spearman_expected", "Spearman (expected score)"),
    ("qwk", "Quadratic weighted kappa"),
    ("macro_f1", "Macro-F1"),
    ("ece", "Expected calibration error"),
    ("brier", "Brier score"),
)


def model_card(*, version: ModelVersion) -> dict[str, Any]:
    """What a reader needs to judge a model: its data, validation, calibration and domain check.

    Everything comes from the weights' metadata as registered; absent parts are None (weights
    trained before a figure existed), never guessed.
    """
    meta: dict[str, Any] = version.metadata or {}
    raw_cv = meta.get("cv")
    cv: dict[str, Any] = raw_cv if isinstance(raw_cv, dict) else {}
    metrics = []
    for key, label in CARD_METRICS:
        figure = _cv_figure(cv, key)
        if figure is not None:
            metrics.append({"key": key, "label": label, "mean": figure["mean"], "sd": figure.get("sd"),
                            "per_seed": figure.get("per_seed") or []})
    classes = [str(c).replace("score_", "") for c in meta.get("classes") or []]
    confusion = cv.get("confusion_seed0")
    per_class = None
    if classes and isinstance(cv.get("sensitivity_seed0"), list) and isinstance(cv.get("specificity_seed0"), list):
        per_class = [{"score": c, "sensitivity": se, "specificity": sp}
                     for c, se, sp in zip(classes, cv["sensitivity_seed0"], cv["specificity_seed0"], strict=False)]
    return {
        "version": version.version, "active": version.is_active, "weights": version.weights or "default",
        "registered_at": version.created_at,
        "architecture": meta.get("architecture"), "mode": meta.get("mode"),
        "training_patients": len(meta.get("training_patients") or []) or None,
        "training_clips": meta.get("training_clips"),
        "cv": {"folds": cv.get("k"), "seeds": cv.get("seeds"), "patients": cv.get("n_patients"),
               "clips": cv.get("n_clips"), "optimistic": bool(cv.get("optimistic_backbone_seen_all_folds")),
               "metrics": metrics} if cv else None,
        "classes": classes,
        "confusion": [{"score": classes[i] if i < len(classes) else str(i), "counts": row}
                      for i, row in enumerate(confusion)] if isinstance(confusion, list) else None,
        "per_class": per_class,
        "domain_check": meta.get("domain_check") if isinstance(meta.get("domain_check"), dict) else None,
        "preprocess": meta.get("preprocess"), "command": meta.get("command"),
        "backbone_sha256": meta.get("backbone_sha256"), "software": {"python": meta.get("python"),
                                                                     "torch": meta.get("torch")},
    }


def model_cards() -> list[dict[str, Any]]:
    """Cards of every registered scoring model, the active one first."""
    return [model_card(version=v) for v in ModelVersion.objects.order_by("-is_active", "-created_at")]
