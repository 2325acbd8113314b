"""Dashboard reads shared by the pages: exams with their current results, the chest diagram and
the clip viewer. The timeline, overview and correlation have a module each; pages and the API
call the same functions, so they always agree.

Every function loads its rows in a fixed number of queries (no per-exam or per-zone query):
exams, their current exam scores, those jobs' clip scores, severities, clips and blood gases
are each one ``values()`` query, joined in Python.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from django.db.models import QuerySet
from django.urls import reverse

from patients.imaging.models import ZoneClip
from patients.records import chrono
from patients.records.models import Exam
from patients.studies.protocols import Protocol, get_protocol
from scoring.models import ClipScore, ExamScore, SeverityPrediction
from scoring.selectors import clip_frames_payload

# Same colours as .score.s0-s3 in lusweb.css: one meaning of colour across the site.
SCORE_COLOURS = ("#2e7d32", "#f9a825", "#ef6c00", "#b71c1c")
SCORE_MEANINGS = ("0 · A-lines (normal)", "1 · separate B-lines", "2 · coalescent B-lines",
                  "3 · consolidation / white lung")
SEVERITY_COLOURS = {"mild": "#2e7d32", "moderate": "#f9a825", "severe": "#ef6c00", "critical": "#b71c1c"}
NO_SEVERITY_COLOUR = "#8a97a5"

T = TypeVar("T")


def _chunks(items: Sequence[T], size: int = 500) -> Iterable[Sequence[T]]:
    # SQLite caps the number of query parameters; chunking keeps large studies working.
    for i in range(0, len(items), size):
        yield items[i:i + size]


def clip_url(clip_id: int | None) -> str | None:
    return reverse("clip-detail", args=[clip_id]) if clip_id else None


def load_exams(exam_qs: QuerySet[Exam], *, zone_details: bool = True) -> list[dict[str, Any]]:
    """Exams of ``exam_qs`` (patient, time order) with their current results.

    The current exam score follows ``scoring.selectors.current_exam_score``: the newest result of
    the active model, else the newest of any model. Each exam dict has ``score`` (None = not
    scored yet), ``zones`` {zone: {score, probs, findings, clip, in_domain}} of that score's job, ``clips``
    {zone: clip id} and ``severity`` (the prediction of the same job if any, else the newest;
    None = no severity yet).
    """
    exams = list(exam_qs.order_by("patient_id", "acquired_at", "pk").values("id", "patient_id", "acquired_at",
                                                                             "protocol"))
    if not exams:
        return []
    ids = exam_qs.values("pk")
    scores: dict[int, dict[str, Any]] = {}
    for row in (ExamScore.objects.filter(exam__in=ids)
                .order_by("exam_id", "-model_version__is_active", "-created_at", "-pk")
                .values("exam_id", "job_id", "luss", "max_luss", "mean_score", "coverage", "missing_zones",
                        "worst_zone", "zones_ge2", "model_version__version")):
        scores.setdefault(row["exam_id"], dict(row))
    zone_rows: dict[int, dict[str, dict[str, Any]]] = {}
    if zone_details:
        jobs = [s["job_id"] for s in scores.values()]
        for chunk in _chunks(jobs):
            # Not the float16 frame array: the dashboards only need the clip-level results.
            # Only the domain flag of ``extra``: the rest (per-frame six-class values) is kilobytes a clip.
            for cs in ClipScore.objects.filter(job_id__in=chunk).values(
                    "job_id", "zone", "score", "probs", "findings", "clip_id", "extra__domain__in_domain"):
                zone: dict[str, Any] = dict(cs)
                zone["in_domain"] = zone.pop("extra__domain__in_domain")  # None: weights without the check
                zone_rows.setdefault(cs["job_id"], {})[cs["zone"]] = zone
    severities: dict[int, list[dict[str, Any]]] = {}
    for sp in (SeverityPrediction.objects.filter(exam__in=ids).order_by("exam_id", "-created_at", "-pk")
               .values("exam_id", "job_id", "label", "probs", "severe_probability", "model_version")):
        severities.setdefault(sp["exam_id"], []).append(dict(sp))
    clips: dict[int, dict[str, int]] = {}
    for c in ZoneClip.objects.filter(exam__in=ids).values("id", "exam_id", "zone"):
        clips.setdefault(c["exam_id"], {})[c["zone"]] = c["id"]
    out = []
    for e in exams:
        score = scores.get(e["id"])
        preds = severities.get(e["id"], [])
        severity = None
        if preds:
            same_job = [p for p in preds if score is not None and p["job_id"] == score["job_id"]]
            severity = (same_job or preds)[0]
        out.append({
            **e,
            "score": score,
            "zones": zone_rows.get(score["job_id"], {}) if score else {},
            "clips": clips.get(e["id"], {}),
            "severity": severity,
        })
    return out


def zone_order(protocol: Protocol, exams: Sequence[dict[str, Any]]) -> list[str]:
    """The protocol's zones in anatomical order, then any other zone an exam has (other protocol)."""
    codes = list(protocol.codes)
    for e in exams:
        for z in list(e["clips"]) + list(e["zones"]):
            if z not in codes:
                codes.append(z)
    return codes


def zone_label(code: str, protocols: Sequence[Protocol]) -> str:
    for p in protocols:
        try:
            return p.zone(code).label
        except KeyError:
            continue
    return code


def chest_diagram_zones(*, exam: Exam) -> list[dict[str, Any]]:
    """The ``zones`` of ``templates/dashboards/_chest_diagram.html`` for an exam, in protocol order:
    code, side, region, level, label, score (None = missing or not scored), clip_url (None = no clip)."""
    rows = load_exams(Exam.objects.filter(pk=exam.pk))
    data = rows[0] if rows else {"zones": {}, "clips": {}}
    out = []
    for z in get_protocol(exam.protocol).zones:
        zs = data["zones"].get(z.code)
        out.append({
            "code": z.code, "side": z.side, "region": z.region, "level": z.level, "label": z.label,
            "score": zs["score"] if zs else None, "clip_url": clip_url(data["clips"].get(z.code)),
        })
    return out


def previous_zone_clip(*, clip: ZoneClip) -> ZoneClip | None:
    """The same zone at the patient's previous exam that has a clip for it."""
    exam = clip.exam
    return (ZoneClip.objects.select_related("exam")
            .filter(exam__patient_id=exam.patient_id, zone=clip.zone, exam__acquired_at__lt=exam.acquired_at)
            .order_by("-exam__acquired_at", "-pk").first())


def _player(clip: ZoneClip, clock: chrono.PatientClock) -> dict[str, Any]:
    frames = clip_frames_payload(clip=clip)
    frame0 = reverse("clip-frame", args=[clip.pk, 0])
    gradcam0 = reverse("dashboard-clip-gradcam", args=[clip.pk, 0])
    return {
        "id": clip.pk, "zone": clip.zone, "frame_count": clip.frame_count,
        # A still image or a file without a rate plays at 20 fps (documented on the page).
        "fps": clip.fps or None, "play_fps": clip.fps or 20.0,
        "exam": clip.exam_id, "exam_label": clock.label(clip.exam.acquired_at),
        "exam_url": reverse("exam-detail", args=[clip.exam_id]), "page_url": reverse("clip-detail", args=[clip.pk]),
        "frame_url": frame0[: -len("0.png")], "gradcam_url": gradcam0[: -len("0.png")],
        "model_version": frames["model_version"], "clip_score": frames.get("clip_score"),
        "clip_probs": frames.get("clip_probs"), "findings": frames.get("findings"),
        "confidence": frames["confidence"], "in_domain": frames["in_domain"],
        "domain_distance": frames["domain_distance"],
        "expected_scores": frames["expected_scores"], "frame_scores": frames["frame_scores"],
        "frame_probs": frames["frame_probs"],
    }


def clip_viewer(*, clip: ZoneClip, user: Any) -> dict[str, Any]:
    """Both players of the viewer: this clip and the same zone at the previous exam (or None).
    ``exam_label`` is the exam's time as the user may see it (a day number for researchers)."""
    previous = previous_zone_clip(clip=clip)
    label = zone_label(clip.zone, [get_protocol(clip.exam.protocol)])
    clock = chrono.clock_for(user=user, patient=clip.exam.patient)
    return {"zone": clip.zone, "label": label, "current": _player(clip, clock),
            "previous": _player(previous, clock) if previous else None}
