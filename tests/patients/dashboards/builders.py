"""Result rows written directly (no model run): what a finished scoring job leaves behind."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from patients.imaging.models import ZoneClip
from patients.records.models import Exam
from patients.studies.protocols import get_protocol
from scoring.core.inference.six_class import SIX_CLASS_VALUES, SixClassResult
from scoring.models import ClipScore, ExamScore, ModelVersion, ScoringJob, SeverityPrediction
from tests.factories import ai_readings

SEVERITY_PROBS = {
    "mild": [0.7, 0.2, 0.07, 0.03],
    "moderate": [0.15, 0.6, 0.2, 0.05],
    "severe": [0.05, 0.15, 0.6, 0.2],
    "critical": [0.02, 0.08, 0.2, 0.7],
}


def model_version(version: str = "test-model-1", *, active: bool = True) -> ModelVersion:
    mv, _ = ModelVersion.objects.get_or_create(version=version, defaults={"weights": "default", "is_active": active})
    return mv


def fake_clip(exam: Exam, zone: str, *, frame_count: int = 4) -> ZoneClip:
    """A clip row without files (enough for scores and the API; not for frame views)."""
    return ZoneClip.objects.create(
        exam=exam, zone=zone, file=f"clips/fake/{exam.pk}-{zone}.png", sha256=f"{exam.pk:032d}{zone:0>32}"[:64],
        size_bytes=1, format="png", frame_count=frame_count, rows=8, columns=8, frames=f"clips/fake/{exam.pk}-{zone}.npz",
    )


def clip_probs(score: int) -> list[float]:
    probs = [0.1, 0.1, 0.1, 0.1]
    probs[score] = 0.7
    return probs


def frame_probs(score: int, frame_count: int) -> np.ndarray:
    """[T, 4] probabilities drifting around ``score`` so the expected-score curve is not flat."""
    rows = []
    for t in range(frame_count):
        p = np.full(4, 0.05)
        p[score] = 0.65
        p[(score + (1 if t % 2 else -1)) % 4] += 0.2 + 0.02 * t
        rows.append(p / p.sum())
    return np.asarray(rows, dtype=np.float32)


def record_scores(exam: Exam, zone_scores: Mapping[str, int], *, mv: ModelVersion,
                  severity: str | None = None, clips: Mapping[str, ZoneClip] | None = None) -> ExamScore:
    """A succeeded job with one ClipScore per scored zone, the AI's readings, its ExamScore and
    optionally a severity."""
    job = ScoringJob.objects.create(exam=exam, model_version=mv, status="succeeded", progress=1.0)
    existing = {c.zone: c for c in exam.clips.all()}
    for zone, score in zone_scores.items():
        clip = (clips or {}).get(zone) or existing.get(zone) or fake_clip(exam, zone)
        fp = frame_probs(score, clip.frame_count)
        ClipScore.objects.create(
            job=job, clip=clip, zone=zone, model_version=mv, score=score, probs=clip_probs(score),
            findings={"a_lines": 0.9 if score == 0 else 0.2, "b_lines": 0.8 if score >= 1 else 0.1,
                      "consolidation": 0.7 if score == 3 else 0.05},
            aggregator="mean", frame_count=clip.frame_count, frame_probs_f16=ClipScore.pack_frame_probs(fp),
        )
    ai_readings(job)  # what the pipeline stores beside the scores: the zones' record until read
    codes = get_protocol(exam.protocol).codes
    values = list(zone_scores.values())
    worst = max(zone_scores, key=lambda z: zone_scores[z]) if zone_scores else ""
    result = ExamScore.objects.create(
        job=job, exam=exam, model_version=mv, luss=sum(values), max_luss=3 * len(codes),
        mean_score=sum(values) / len(values) if values else None, worst_zone=worst,
        worst_score=zone_scores.get(worst), zones_ge2=sum(1 for v in values if v >= 2),
        coverage=len(values) / len(codes), missing_zones=[z for z in codes if z not in zone_scores],
    )
    if severity is not None:
        probs = SEVERITY_PROBS[severity]
        SeverityPrediction.objects.create(exam=exam, job=job, model_version=mv.version, label=severity, probs=probs,
                                          severe_probability=probs[2] + probs[3], zone_attention={})
    return result


def zone_scores(codes: Sequence[str], base: int, *, skip: Sequence[str] = ()) -> dict[str, Any]:
    """Scores ``base`` (clipped 0-3) per zone with a little pattern, leaving out ``skip``."""
    return {z: int(min(3, max(0, base + (i % 3) - 1))) for i, z in enumerate(codes) if z not in skip}


def six_class_result(classes: Sequence[str]) -> dict[str, Any]:
    """What the pipeline stores in ``ClipScore.extra["six_class"]`` for frames of these classes."""
    values = np.array([SIX_CLASS_VALUES[c] for c in classes], dtype=float)
    return SixClassResult(list(classes), values, float(values.mean())).to_dict()


def store_six_class(job_id: int, classes: Mapping[str, Sequence[str]]) -> None:
    """Give the job's clip scores of these zones a six-class result, one class per frame (as many
    classes as the clip has frames)."""
    for cs in ClipScore.objects.filter(job_id=job_id, zone__in=list(classes)):
        assert cs.frame_count == len(classes[cs.zone]), (cs.zone, cs.frame_count)
        cs.extra = {**cs.extra, "six_class": six_class_result(classes[cs.zone])}
        cs.save(update_fields=["extra"])
