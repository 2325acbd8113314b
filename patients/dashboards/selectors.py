"""Dashboard reads shared by the pages: exams with their score of record and the AI's results,
the chest diagram and the clip viewer. The timeline, overview and correlation have a module each;
pages and the API call the same functions, so they always agree.

Every function loads its rows in a fixed number of queries (no per-exam or per-zone query):
exams, their current exam scores, those jobs' clip scores, readings, signatures, severities,
clips and blood gases are each one ``values()`` query, joined in Python.
"""
from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from django.db.models import QuerySet
from django.urls import get_script_prefix, reverse

from patients.dashboards.gradcam import explanation
from patients.imaging.models import ZoneClip
from patients.imaging.selectors import DEFAULT_VIEWER_FPS
from patients.readings.selectors import (
    ZoneRecord,
    clip_record,
    open_blind_exams,
    record_json,
    record_scores,
    review_states,
)
from patients.records import chrono
from patients.records.models import Exam
from patients.studies.protocols import Protocol, get_protocol
from scoring.models import ClipScore, ExamScore, SeverityPrediction
from scoring.selectors import clip_frames_payload, current_clip_score, record_summary
from scoring.study_model import study_model_rank

# Same colours as .score.s0-s3 in lusweb.css: one meaning of colour across the site.
SCORE_COLOURS = ("#2e7d32", "#f9a825", "#ef6c00", "#b71c1c")
SCORE_MEANINGS = ("0 · A-lines (normal)", "1 · separate B-lines", "2 · coalescent B-lines",
                  "3 · consolidation / white lung")
SEVERITY_COLOURS = {"mild": "#2e7d32", "moderate": "#f9a825", "severe": "#ef6c00", "critical": "#b71c1c"}
#: Severity now (the guideline class of the exam day); an undetermined class takes NO_SEVERITY_COLOUR.
NOW_COLOURS = {"mild_or_moderate": "#2e7d32", "severe": "#ef6c00", "critical": "#b71c1c"}
NO_SEVERITY_COLOUR = "#8a97a5"

T = TypeVar("T")


def _chunks(items: Sequence[T], size: int = 500) -> Iterable[Sequence[T]]:
    # SQLite caps the number of query parameters; chunking keeps large studies working.
    for i in range(0, len(items), size):
        yield items[i:i + size]


def clip_url(clip_id: int | None) -> str | None:
    """The clip page's URL (None without a clip)."""
    return _clip_url_pattern(get_script_prefix()).format(clip_id) if clip_id else None


@functools.lru_cache(maxsize=8)
def _clip_url_pattern(script_prefix: str) -> str:
    # A timeline links every zone of every exam (2,400 links for 20 exams): resolving the URL once
    # per script prefix instead of once per link was 15 % of the page's time.
    marker = 987654321
    return reverse("clip-detail", args=[marker]).replace(str(marker), "{}")


def load_exams(exam_qs: QuerySet[Exam], *, zone_details: bool = True, user: Any = None) -> list[dict[str, Any]]:
    """Exams of ``exam_qs`` (patient, time order) with their score of record and the AI's results.

    Each exam dict has:

    * ``score``: the headline of the score of record (None = no zone read yet, by the AI or a
      clinician): ``luss``, ``max_luss``, ``mean_score``, ``worst_zone``, ``worst_score``,
      ``zones_ge2``, ``coverage``, ``missing_zones`` (``scoring.core.inference.exam.exam_score`` over
      the record scores), ``luss_ai`` (the AI's sum), ``reviewed_zones`` (zones a clinician read),
      ``model_version__version`` and ``job_id`` (the AI's current result, or None);
    * ``score_ai``: the AI's current exam score (``scoring.selectors.current_exam_score``: the
      newest result of the active model, else of any model), or None;
    * ``zones`` {zone: {score, source, kind, ai_score, ai_confidence, reader, read_at,
      record_findings, clip_id, zone, probs, findings, in_domain, job_id}} for every zone with a
      record score: ``score`` the record, ``source`` "clinician" | "ai", ``findings`` and ``probs``
      the AI's probabilities (None when hidden or not scored), ``record_findings`` the record
      reading's findings;
    * ``clips`` {zone: clip id}, ``severity`` (the risk model's prediction of the AI's job if any,
      else the newest: its course class and probabilities), ``review_status`` ("draft" | "reviewed" | "amended"), ``signed_by``, ``signed_at``
      and ``blind`` (``user`` reads the exam blind: the AI's results, the severity and the other
      readers are left out).
    """
    exams = list(exam_qs.order_by("patient_id", "acquired_at", "pk").values("id", "patient_id", "acquired_at",
                                                                             "protocol"))
    if not exams:
        return []
    ids = [e["id"] for e in exams]
    blind = open_blind_exams(user=user, exam_ids=ids)
    ai_scores = _ai_exam_scores(exam_qs.values("pk"))
    ai_zones = _ai_zone_rows([s["job_id"] for s in ai_scores.values()]) if zone_details else {}
    records = record_scores(exam_ids=ids, user=user, blind=blind)
    states = review_states(exam_ids=ids)
    severities = _severities(exam_qs.values("pk"))
    clips = {exam_id: {zone: r.clip_id for zone, r in zones.items()} for exam_id, zones in records.items()}
    out = []
    for e in exams:
        hidden = e["id"] in blind
        ai = None if hidden else ai_scores.get(e["id"])
        preds = [] if hidden else severities.get(e["id"], [])
        same_job = [p for p in preds if ai is not None and p["job_id"] == ai["job_id"]]
        state = states[e["id"]]
        zones = _record_zones(records.get(e["id"], {}), ai_zones.get(ai["job_id"], {}) if ai else {})
        out.append({
            **e, "score": _record_score(dict(e), zones, ai), "score_ai": ai, "zones": zones,
            "clips": clips.get(e["id"], {}), "severity": (same_job or preds)[0] if preds else None,
            "review_status": state.status,
            "signed_by": state.signed_by, "signed_at": state.signed_at, "blind": hidden,
        })
    return out


def _ai_exam_scores(ids: QuerySet[Any]) -> dict[int, dict[str, Any]]:
    scores: dict[int, dict[str, Any]] = {}
    for row in (ExamScore.objects.filter(exam__in=ids).annotate(rank=study_model_rank("exam__patient__study_id"))
                .order_by("exam_id", "rank", "-created_at", "-pk")
                .values("exam_id", "job_id", "luss", "max_luss", "mean_score", "coverage", "missing_zones",
                        "worst_zone", "zones_ge2", "model_version__version")):
        scores.setdefault(row["exam_id"], dict(row))
    return scores


def _ai_zone_rows(jobs: list[int]) -> dict[int, dict[str, dict[str, Any]]]:
    """job id -> zone -> the AI's clip result (probabilities, findings, domain flag)."""
    rows: dict[int, dict[str, dict[str, Any]]] = {}
    for chunk in _chunks(jobs):
        # Not the float16 frame array: the dashboards only need the clip-level results.
        # Only the domain flag of ``extra``: the rest (per-frame six-class values) is kilobytes a clip.
        for cs in ClipScore.objects.filter(job_id__in=chunk).values(
                "job_id", "zone", "score", "probs", "findings", "clip_id", "extra__domain__in_domain"):
            zone: dict[str, Any] = dict(cs)
            zone["in_domain"] = zone.pop("extra__domain__in_domain")  # None: weights without the check
            rows.setdefault(cs["job_id"], {})[cs["zone"]] = zone
    return rows


def _severities(ids: QuerySet[Any]) -> dict[int, list[dict[str, Any]]]:
    severities: dict[int, list[dict[str, Any]]] = {}
    for sp in (SeverityPrediction.objects.filter(exam__in=ids).order_by("exam_id", "-created_at", "-pk")
               .values("exam_id", "job_id", "label", "probs", "severe_probability", "model_version",
                       "input_source")):
        severities.setdefault(sp["exam_id"], []).append(dict(sp))
    return severities


def _record_zones(records: dict[str, ZoneRecord], ai: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """zone -> the record and the AI's result beside it, for the zones with a record score."""
    zones: dict[str, dict[str, Any]] = {}
    for zone, r in records.items():
        if r.score is None:
            continue
        cs = ai.get(zone) if r.ai_score is not None else None
        zones[zone] = {
            "zone": zone, "clip_id": r.clip_id, "score": r.score, "source": r.source, "kind": r.kind,
            "ai_score": r.ai_score, "ai_confidence": r.ai_confidence, "reader": r.reader, "read_at": r.read_at,
            "record_findings": r.findings, "job_id": cs["job_id"] if cs else None,
            "probs": cs["probs"] if cs else None, "findings": cs["findings"] if cs else None,
            "in_domain": cs["in_domain"] if cs else r.ai_in_domain,
        }
    return zones


def _record_score(exam: dict[str, Any], zones: dict[str, dict[str, Any]],
                  ai: dict[str, Any] | None) -> dict[str, Any] | None:
    """The exam headline of its record scores (None when no zone has one)."""
    if not zones:
        return None
    ai_known = [z["ai_score"] for z in zones.values() if z["ai_score"] is not None]
    return {
        "exam_id": exam["id"], **record_summary({z: r["score"] for z, r in zones.items()},
                                                get_protocol(exam["protocol"]).codes),
        "luss_ai": sum(ai_known) if ai_known else None,
        "reviewed_zones": sum(1 for r in zones.values() if r["source"] == "clinician"),
        "job_id": ai["job_id"] if ai else None, "model_version__version": ai["model_version__version"] if ai else None,
    }


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


def chest_diagram_zones(*, exam: Exam, user: Any = None) -> list[dict[str, Any]]:
    """The ``zones`` of ``templates/dashboards/_chest_diagram.html`` for an exam, in protocol order:
    code, side, region, level, label, score (the record; None = missing or not read), source
    ("clinician" | "ai" | None), ai_score, reader, clip_url (None = no clip)."""
    rows = load_exams(Exam.objects.filter(pk=exam.pk), zone_details=False, user=user)
    data = rows[0] if rows else {"zones": {}, "clips": {}}
    out = []
    for z in get_protocol(exam.protocol).zones:
        zs = data["zones"].get(z.code)
        out.append({
            "code": z.code, "side": z.side, "region": z.region, "level": z.level, "label": z.label,
            "score": zs["score"] if zs else None, "source": zs["source"] if zs else None,
            "ai_score": zs["ai_score"] if zs else None, "reader": zs["reader"] if zs else None,
            "clip_url": clip_url(data["clips"].get(z.code)),
        })
    return out


def previous_zone_clip(*, clip: ZoneClip) -> ZoneClip | None:
    """The same zone at the patient's previous exam that has a clip for it."""
    exam = clip.exam
    return (ZoneClip.objects.select_related("exam")
            .filter(exam__patient_id=exam.patient_id, zone=clip.zone, exam__acquired_at__lt=exam.acquired_at)
            .order_by("-exam__acquired_at", "-pk").first())


def _player(clip: ZoneClip, clock: chrono.PatientClock, user: Any) -> dict[str, Any]:
    record = clip_record(clip=clip, user=user)
    frames = clip_frames_payload(clip=clip, hidden=bool(open_blind_exams(user=user, exam_ids=[clip.exam_id])))
    # The model behind the AI's clip score and the frames it read (nothing while the score is hidden).
    shown = current_clip_score(clip=clip) if frames["model_version"] is not None else None
    frame0 = reverse("clip-frame", args=[clip.pk, 0])
    gradcam0 = reverse("dashboard-clip-gradcam", args=[clip.pk, 0])
    return {
        "id": clip.pk, "zone": clip.zone, "frame_count": clip.frame_count,
        # A still image or a file without a rate plays at 20 fps (documented on the page).
        "fps": clip.fps or None, "play_fps": clip.fps or DEFAULT_VIEWER_FPS,
        # One request per clip: the cine is an MP4 whose frame i shows at i / play_fps.
        "video_url": reverse("clip-video", args=[clip.pk]),
        "exam": clip.exam_id, "exam_label": clock.label(clip.exam.acquired_at),
        "exam_url": reverse("exam-detail", args=[clip.exam_id]), "page_url": reverse("clip-detail", args=[clip.pk]),
        "frame_url": frame0[: -len("0.png")], "gradcam_url": gradcam0[: -len("0.png")],
        "model_version": frames["model_version"], "clip_score": frames.get("clip_score"),
        "clip_probs": frames.get("clip_probs"), "findings": frames.get("findings"),
        "confidence": frames["confidence"], "in_domain": frames["in_domain"],
        "domain_distance": frames["domain_distance"],
        "expected_scores": frames["expected_scores"], "frame_scores": frames["frame_scores"],
        "frame_probs": frames["frame_probs"], "explanation": explanation(clip=clip, score=shown),
        "crops": frames["crops"],
        # The score of record beside the AI's (``clip_score``); researchers get no reading date.
        "record": {**record_json(record), **({} if clock.shows_dates else {"read_at": None})},
    }


def clip_viewer(*, clip: ZoneClip, user: Any) -> dict[str, Any]:
    """Both players of the viewer: this clip and the same zone at the previous exam (or None).
    ``exam_label`` is the exam's time as the user may see it (a day number for researchers)."""
    previous = previous_zone_clip(clip=clip)
    label = zone_label(clip.zone, [get_protocol(clip.exam.protocol)])
    clock = chrono.clock_for(user=user, patient=clip.exam.patient)
    return {"zone": clip.zone, "label": label, "current": _player(clip, clock, user),
            "previous": _player(previous, clock, user) if previous else None}
