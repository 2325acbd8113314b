"""Scoring reads: the current scores of an exam, job details, per-frame results."""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import BooleanField, ExpressionWrapper, Q, QuerySet

from patients.imaging.models import ZoneClip
from patients.readings.selectors import ZoneRecord, open_blind_exams, record_scores
from patients.records.models import Exam
from patients.studies.protocols import get_protocol
from scoring.core.inference.exam import exam_score
from scoring.core.inference.six_class import (
    SIX_CLASS_SCALE,
    StoredSixClass,
    six_class_dominant,
    six_class_pooled,
    six_class_stored,
)
from scoring.models import ClipScore, ExamScore, JobStatus, ModelVersion, ScoringJob
from scoring.study_model import study_model_rank


def latest_job(*, exam: Exam) -> ScoringJob | None:
    return ScoringJob.objects.filter(exam=exam).select_related("model_version").order_by("-created_at", "-pk").first()


def current_exam_score(*, exam: Exam) -> ExamScore | None:
    """The newest result of the model the exam's study scores with (its promoted site model, else
    the active model); else the newest result of any model."""
    return (ExamScore.objects.filter(exam=exam).select_related("model_version", "job")
            .annotate(rank=study_model_rank("exam__patient__study_id")).order_by("rank", "-created_at", "-pk").first())


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


def exam_scores_payload(*, exam: Exam, user: Any = None, hidden: bool | None = None) -> dict[str, Any]:
    """The ``scores`` block of ``GET /api/v1/exams/<id>/``: the headline from the score of record
    (``luss`` and the rest) and the AI's sum beside it (``luss_ai``); per zone the record score, its
    source and the AI's reading; ``six_class`` the AI's exam severity on the six-class scale of Hu et
    al. (:func:`six_class_of_jobs`, from the same model's scores). During ``user``'s blind read of
    the exam the AI is left out (``hidden``: whether that read is open, when the caller knows)."""
    job = latest_job(exam=exam)
    result = current_exam_score(exam=exam)
    codes = get_protocol(exam.protocol).codes
    if hidden is None:
        hidden = bool(open_blind_exams(user=user, exam_ids=[exam.pk]))
    records = record_scores(exam_ids=[exam.pk], user=user, blind={exam.pk} if hidden else set())[exam.pk]
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
        "six_class": None,
    }
    if result is not None and not hidden:
        six = six_class_of_jobs([result.job_id], dominant=True).get(result.job_id)
        payload.update({"scored_job": result.job_id, "model_version": result.model_version.version,
                        "model_cv": model_cv_summary(result.model_version.metadata),
                        "six_class": six.as_dict(codes) if six else None})
        checked = [z for z in payload["zones"] if z["in_domain"] is not None]
        payload["out_of_domain_zones"] = [z["zone"] for z in checked if not z["in_domain"]] if checked else None
    if job is not None and result is not None and job.pk != result.job_id and job.status != JobStatus.SUCCEEDED:
        payload["status"] = job.status  # a newer job is queued or running; the shown scores are older
    return payload


def current_clip_score(*, clip: ZoneClip) -> ClipScore | None:
    """The clip's current score: the newest of the model its study scores with, else the newest of
    any model."""
    return (ClipScore.objects.filter(clip=clip).select_related("model_version")
            .annotate(rank=study_model_rank("clip__exam__patient__study_id"))
            .order_by("rank", "-created_at", "-pk").first())


def current_clip_scores(*, clip_ids: Iterable[int], fields: Sequence[str]) -> dict[int, dict[str, Any]]:
    """clip id -> ``fields`` of the clip's current score (as :func:`current_clip_score`), for many
    clips in two queries a chunk: the winners are picked from narrow rows first, so that a wide
    field (``extra__severity_features``) is read only for them. Clips without a score are absent."""
    ids = list(dict.fromkeys(int(i) for i in clip_ids))
    best: dict[int, tuple[tuple[bool, Any, int], int]] = {}
    for start in range(0, len(ids), 500):  # SQLite caps a query's parameters
        for pk, clip_id, rank, created in (ClipScore.objects.filter(clip_id__in=ids[start:start + 500])
                                           .annotate(rank=study_model_rank("clip__exam__patient__study_id"))
                                           .values_list("pk", "clip_id", "rank", "created_at")):
            key = (rank == 0, created, pk)
            if clip_id not in best or key > best[clip_id][0]:
                best[clip_id] = (key, pk)
    winners = [pk for _key, pk in best.values()]
    out: dict[int, dict[str, Any]] = {}
    for start in range(0, len(winners), 500):
        for row in ClipScore.objects.filter(pk__in=winners[start:start + 500]).values("clip_id", *fields):
            out[row.pop("clip_id")] = row
    return out


def clip_frames_payload(*, clip: ZoneClip, hidden: bool = False) -> dict[str, Any]:
    """Per-frame probabilities and scores of the clip's current score (``hidden``: none, as for a
    user reading the exam blind)."""
    score = None if hidden else current_clip_score(clip=clip)
    if score is None:
        return {"clip": clip.pk, "zone": clip.zone, "frame_count": clip.frame_count, "fps": clip.fps,
                "model_version": None, "confidence": None, "in_domain": None, "domain_distance": None,
                "frame_probs": [], "frame_scores": [], "expected_scores": [], "crops": None}
    probs = score.frame_probs
    return {
        "clip": clip.pk, "zone": clip.zone, "frame_count": clip.frame_count, "fps": clip.fps,
        "model_version": score.model_version.version, "clip_score": score.score, "clip_probs": score.probs,
        "findings": score.findings, "aggregator": score.aggregator,
        "confidence": score_confidence(score.probs, score.score), **_domain(score.extra),
        "frame_probs": [[round(float(p), 4) for p in row] for row in probs],
        "frame_scores": [int(i) for i in probs.argmax(axis=1)],
        "expected_scores": [round(float(v), 4) for v in probs @ [0.0, 1.0, 2.0, 3.0]],
        # Reg-STN's two crops of every frame (x0, y0, x1, y1 as fractions of the frame), else None.
        "crops": _crops(score.extra, score.frame_count),
    }


def _crops(extra: Any, frames: int) -> list[Any] | None:
    """The stored crops of a score when there is one box list per frame (else None)."""
    crops = extra.get("crops") if isinstance(extra, dict) else None
    return crops if isinstance(crops, list) and len(crops) == frames else None


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
        "site": site_card(meta, cv),
    }


def site_card(meta: dict[str, Any], cv: dict[str, Any]) -> dict[str, Any] | None:
    """A site model's champion-vs-challenger table and learning curve (None for a shipped model)."""
    site = meta.get("site")
    if not isinstance(site, dict):
        return None
    raw = site.get("champion_cv")
    champion: dict[str, Any] = raw if isinstance(raw, dict) else {}
    rows = []
    for key, label in CARD_METRICS:
        mine, theirs = _cv_figure(cv, key), _cv_figure(champion, key)
        if mine is not None or theirs is not None:
            rows.append({"key": key, "label": label, "candidate": mine["mean"] if mine else None,
                         "champion": theirs["mean"] if theirs else None})
    curve = [{"fraction": p.get("fraction"), "patients": p.get("patients"),
              **{k: (p.get(k) or {}).get("mean") for k in ("accuracy", "within1", "spearman_expected", "qwk")}}
             for p in site.get("learning_curve") or [] if isinstance(p, dict)]
    return {"study": site.get("study_name"), "champion": site.get("champion"), "rows": rows, "curve": curve,
            "in_sample": champion.get("in_sample"), "seen": champion.get("clips_seen_in_training"),
            "site_patients": site.get("site_patients"), "site_clips": site.get("site_clips"),
            "pooled_clips": site.get("pooled_clips"), "include_shipped": site.get("include_shipped"),
            "trained_by": site.get("trained_by")}


def visible_model_versions(*, user: Any = None) -> QuerySet[ModelVersion]:
    """The shipped models and the site models of ``user``'s studies (every site model without a
    user, or for a superuser), the active one first: a study's figures are its members' business."""
    qs = ModelVersion.objects.order_by("-is_active", "-created_at")
    if user is not None and not user.is_superuser:
        qs = qs.filter(Q(study__isnull=True) | Q(study__memberships__user_id=int(user.pk or 0))).distinct()
    return qs


def model_cards(*, user: Any = None) -> list[dict[str, Any]]:
    """Cards of :func:`visible_model_versions`."""
    return [model_card(version=v) for v in visible_model_versions(user=user)]


# --- the six-class scale of Hu et al. (always the AI's: no clinician reads it) -------------------


@dataclass(frozen=True)
class SixClassZone:
    """One clip's six-class result: the mean of its frame values (0-4), its frame count and the
    class of most of its frames (None when not asked for, or not stored)."""

    zone: str
    clip_id: int
    mean: float
    frames: int
    dominant: str | None


@dataclass(frozen=True)
class SixClassExam:
    """An exam's six-class severity from one scoring job: the mean of the frame values over all
    frames of its scored clips (0-4; a clip weighs by its frame count), the model that gave it
    and its clips."""

    job_id: int
    model_version: str
    mean: float
    frames: int
    zones: tuple[SixClassZone, ...]

    def as_dict(self, codes: Sequence[str] = ()) -> dict[str, Any]:
        """JSON form (API and pages), zones in the order of ``codes`` then by code."""
        order = {code: i for i, code in enumerate(codes)}
        zones = sorted(self.zones, key=lambda z: (order.get(z.zone, len(order)), z.zone))
        return {"scale": SIX_CLASS_SCALE, "source": "ai", "model_version": self.model_version,
                "mean": round(self.mean, 4), "frames": self.frames,
                "zones": [{"zone": z.zone, "clip": z.clip_id, "mean": round(z.mean, 4), "frames": z.frames,
                           "dominant": z.dominant} for z in zones]}


def six_class_of_jobs(job_ids: Iterable[int], *, dominant: bool = False) -> dict[int, SixClassExam]:
    """job id -> the exam's six-class severity from that job's clip scores (jobs whose clips carry
    no six-class result are left out). The one place it is computed: the exam page and API, the
    export and the correlation all call it with the job whose scores they show.

    ``dominant``: also each clip's dominant class (reads the per-frame classes: kilobytes a clip,
    so only when asked). Two queries at most per 500 jobs; the second only for scores stored
    before the result was kept as a dict.
    """
    ids = list(dict.fromkeys(job_ids))
    rows: list[dict[str, Any]] = []
    fields = ["pk", "job_id", "clip_id", "zone", "frame_count", "model_version__version", "extra__six_class__mean"]
    if dominant:
        fields.append("extra__six_class__frame_classes")
    for start in range(0, len(ids), 500):  # SQLite caps the number of query parameters
        rows += ClipScore.objects.filter(job_id__in=ids[start:start + 500]).annotate(
            six_kept=ExpressionWrapper(Q(extra__has_key="six_class"), output_field=BooleanField()),
        ).values(*fields, "six_kept")
    legacy = _stored_six_class([r["pk"] for r in rows if r["six_kept"] and r["extra__six_class__mean"] is None])
    by_job: dict[int, list[tuple[dict[str, Any], StoredSixClass]]] = {}
    for r in rows:
        mean = r["extra__six_class__mean"]
        stored = legacy.get(r["pk"]) if mean is None else StoredSixClass(
            float(mean), tuple(r.get("extra__six_class__frame_classes") or ()))
        if stored is not None and r["frame_count"]:
            by_job.setdefault(r["job_id"], []).append((r, stored))
    out: dict[int, SixClassExam] = {}
    for job_id, clips in by_job.items():
        pooled = six_class_pooled((s.mean, r["frame_count"]) for r, s in clips)
        assert pooled is not None  # every clip kept has frames
        zones = tuple(SixClassZone(r["zone"], r["clip_id"], s.mean, r["frame_count"],
                                   six_class_dominant(s.frame_classes) if dominant else None) for r, s in clips)
        out[job_id] = SixClassExam(job_id, clips[0][0]["model_version__version"], pooled,
                                   sum(z.frames for z in zones), zones)
    return out


def _stored_six_class(score_ids: list[int]) -> dict[int, StoredSixClass]:
    """clip score id -> its six-class result read from the whole stored value (older scores kept
    it as a string; see ``six_class_stored``)."""
    out: dict[int, StoredSixClass] = {}
    for start in range(0, len(score_ids), 500):
        for pk, value in ClipScore.objects.filter(pk__in=score_ids[start:start + 500]).values_list(
                "pk", "extra__six_class"):
            stored = six_class_stored(value)
            if stored is not None:
                out[pk] = stored
    return out
