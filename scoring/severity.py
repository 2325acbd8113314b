"""The risk of a severe course at an exam (Django glue around ``scoring.core.severity*``).

The model (MA-CLR) predicts the course class of the whole stay - the outcome it was trained on -
not the patient's state at the exam; that is "severity now" (``patients.records.severity_now``).
Its probabilities are calibrated by the temperature its weights carry and stored so; every page,
the API and the export show them through :func:`risk_block` (clipped to 1-99 %, marked calibrated
only when the installed calibrated model made them, with its cross-validated figures).

Runs as the last step of a scoring job: the zone features come from the same CNN pass that
scored the zones, the clinical record is the latest one before the exam within
``SEVERITY_CLINICAL_WINDOW_DAYS``, and the prediction is stored with its model version.

Each zone's read-out in its features (class probabilities and findings) is the score of record:
the clinician's reading when the zone has one, else the AI's. The sampled features are stored
with the clip scores, so a clinician's reading refreshes the severity without the CNN
(:func:`severity_refresh`, the ``scoring.tasks.severity_refresh`` task).
"""
from __future__ import annotations

import base64
import datetime as dt
import logging
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings

from patients.readings.selectors import record_scores
from patients.records.models import ClinicalInfo, Exam
from patients.studies.protocols import PROTOCOLS, get_protocol
from scoring.core.severity.risk import OUTCOME, displayed_probability
from scoring.models import ClipScore, ExamScore, ScoringJob, SeverityInput, SeverityPrediction
from scoring.study_model import study_model_rank

logger = logging.getLogger(__name__)
_lock = threading.Lock()
_model: dict[str, Any] = {}
DEFAULT_SEVERITY_WEIGHTS = Path(__file__).resolve().parent / "weights" / "severity.pt"


def severity_weights_path() -> Path:
    return Path(os.environ.get("LUSWEB_SEVERITY_WEIGHTS", "") or DEFAULT_SEVERITY_WEIGHTS)


def severity_model() -> Any | None:
    """The severity model, loaded once per process; None when no weights are installed."""
    path = severity_weights_path()
    with _lock:
        if str(path) not in _model:
            if not path.exists():
                logger.warning("no severity weights at %s: exams get no severity", path)
                _model[str(path)] = None
            else:
                from scoring.core.severity.bundle import load_severity  # lazy: torch, worker only
                from scoring.runtime import device  # lazy: LUSWEB_DEVICE, resolved with torch

                _model[str(path)] = load_severity(path, device())
        return _model[str(path)]


def clinical_for_exam(exam: Exam) -> ClinicalInfo | None:
    """The latest clinical record at or before the exam, within the configured window."""
    days = int(getattr(settings, "SEVERITY_CLINICAL_WINDOW_DAYS", 14))
    return (
        ClinicalInfo.objects.filter(patient=exam.patient, recorded_at__lte=exam.acquired_at,
                                    recorded_at__gte=exam.acquired_at - dt.timedelta(days=days))
        .order_by("-recorded_at", "-pk").first()
    )


def clinical_dict(record: ClinicalInfo | None, exam: Exam) -> dict[str, Any] | None:
    if record is None:
        return None
    data = {name: getattr(record, name) for name in (*ClinicalInfo.COMORBIDITIES, *ClinicalInfo.SYMPTOMS)}
    data.update(age=record.age, oxygen_support=record.oxygen_support or None, spo2=record.spo2,
                respiratory_rate=record.respiratory_rate, sex=exam.patient.sex)
    return data


def zone_mapping(protocol_key: str, model_zones: tuple[str, ...], model_protocol: str = "blue-6") -> dict[str, str]:
    """Exam zone code -> the model's zone code with the same side, region and level.

    The default model was trained on BLUE points; a 12-zone exam's R1 (anterior upper) is the
    BLUE R1 (upper BLUE point), R2 -> R2, R4 (lateral lower) -> R3 (PLAPS). Unmatched zones are
    simply absent for the model.
    """
    exam_protocol = get_protocol(protocol_key)
    model_proto = PROTOCOLS.get(model_protocol)
    if model_proto is None:
        return {z: z for z in exam_protocol.codes if z in model_zones}
    mapping = {}
    for mz in model_proto.zones:
        if mz.code not in model_zones:
            continue
        for ez in exam_protocol.zones:
            if (ez.side, ez.region, ez.level) == (mz.side, mz.region, mz.level):
                mapping[ez.code] = mz.code
                break
    return mapping


def severity_feature_sets(*, job: ScoringJob, scored: dict[str, tuple[Any, np.ndarray]]
                          ) -> dict[str, np.ndarray] | None:
    """zone -> the zone's sampled feature vectors ``[sets, D]`` for the severity model, from the
    job's CNN pass (``scored``: zone -> (clip result, frame features)); None when no severity model
    is installed or it needs another frame scorer."""
    from scoring.core.severity.features import sampled_zone_features  # lazy: torch, worker only

    model = severity_model()
    if model is None or not scored:
        return None
    wanted = model.meta.get("frame_scorer_version")
    have = next(iter(scored.values()))[0].model
    if wanted and have and wanted != have:
        # Zone features come from the frame scorer: another scorer means other features.
        logger.warning("severity model %s needs frame scorer %s, job used %s: no severity", model.version, wanted,
                       have)
        return None
    return {zone: np.stack(sampled_zone_features(r, f, seed=job.pk or 0)) for zone, (r, f) in scored.items()}


def pack_features(sets: np.ndarray) -> dict[str, Any]:
    """Feature sets as JSON (``ClipScore.extra["severity_features"]``): float16, base64."""
    arr = np.ascontiguousarray(np.asarray(sets, dtype=np.float16))
    return {"dtype": "float16", "shape": list(arr.shape), "b64": base64.b64encode(arr.tobytes()).decode()}


def unpack_features(packed: Any) -> np.ndarray | None:
    """The float32 array of :func:`pack_features` (None when absent or malformed)."""
    try:
        raw = np.frombuffer(base64.b64decode(packed["b64"]), dtype=np.float16)
        return raw.reshape([int(n) for n in packed["shape"]]).astype(np.float32)
    except (KeyError, TypeError, ValueError):
        return None


def _record_inputs(exam: Exam, sets: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], str]:
    """The sets with each zone read by a clinician (or adjudicated) carrying that reading instead of
    the AI's read-out; ``"record"`` when at least one zone does, else ``"ai"``."""
    from scoring.core.severity.features import with_reading  # lazy: torch, worker only

    records = record_scores(exam_ids=[exam.pk])[exam.pk]
    out: dict[str, np.ndarray] = {}
    source = SeverityInput.AI
    for zone, vectors in sets.items():
        r = records.get(zone)
        if r is not None and r.source == "clinician" and r.score is not None:
            out[zone] = with_reading(vectors, r.score, r.findings)
            source = SeverityInput.RECORD
        else:
            out[zone] = vectors
    return out, source


def severity_predict(*, job: ScoringJob, exam: Exam, sets: dict[str, np.ndarray] | None
                     ) -> SeverityPrediction | None:
    """Predict and store the exam's severity from the zones' feature sets (``[sets, D]`` each, see
    :func:`severity_feature_sets`) with the score of record as each zone's read-out. Replaces the
    job's previous prediction; ``input_source`` says whether a clinician's reading was used."""
    from scoring.core.severity.features import vote  # lazy: torch, worker only

    model = severity_model()
    if model is None or not sets:
        return None
    mapping = zone_mapping(exam.protocol, model.trained.zones, str(model.meta.get("protocol", "blue-6")))
    inputs, source = _record_inputs(exam, {zone: sets[zone] for zone in mapping if zone in sets})
    if not inputs:
        return None
    record = clinical_for_exam(exam)
    clinical = clinical_dict(record, exam)
    back = {v: k for k, v in mapping.items()}
    predictions = []
    for i in range(min(len(v) for v in inputs.values())):
        pred = model.predict_exam({mapping[zone]: v[i] for zone, v in inputs.items()}, clinical)
        # Report attention on the exam's own zone codes.
        pred["zone_attention"] = {back[z]: a for z, a in pred["zone_attention"].items()}
        predictions.append(pred)
    result = vote(predictions)
    prediction, _ = SeverityPrediction.objects.update_or_create(
        exam=exam, job=job,
        defaults={"model_version": model.version, "label": result["label"], "probs": result["probs"],
                  "severe_probability": result["severe_probability"], "zone_attention": result["zone_attention"],
                  "clinical_record": record, "input_source": source},
    )
    return prediction


def severity_refresh(*, exam: Exam) -> SeverityPrediction | None:
    """Recompute the exam's severity from its score of record without the CNN: the feature sets
    stored with the clip scores of the exam's current result. None when there are none (scores
    from before the sets were stored, or no severity model)."""
    current = (ExamScore.objects.filter(exam=exam).select_related("job")
               .annotate(rank=study_model_rank("exam__patient__study_id"))
               .order_by("rank", "-created_at", "-pk").first())
    if current is None:
        return None
    sets: dict[str, np.ndarray] = {}
    for zone, packed in (ClipScore.objects.filter(job_id=current.job_id)
                         .values_list("zone", "extra__severity_features")):
        arr = unpack_features(packed) if packed else None
        if arr is not None:
            sets[zone] = arr
    if not sets:
        logger.info("exam %s: no stored severity features; severity not refreshed", exam.pk)
        return None
    return severity_predict(job=current.job, exam=exam, sets=sets)


def severity_payload(*, exam: Exam) -> dict[str, Any] | None:
    """The ``severity`` block of ``GET /api/v1/exams/<id>/`` (newest prediction), kept for older
    scripts: the risk model's stored output, ``label`` its predicted course class (not the state at
    the exam: that is ``severity_now``). New readers use :func:`risk_payload`."""
    pred = SeverityPrediction.objects.filter(exam=exam).order_by("-created_at", "-pk").first()
    if pred is None:
        return None
    return {"label": pred.label, "probs": pred.probs, "severe_probability": pred.severe_probability,
            "zone_attention": pred.zone_attention, "model_version": pred.model_version,
            "clinical_record": pred.clinical_record_id, "job": pred.job_id, "input_source": pred.input_source}


#: What the zone attention is, wherever it is shown.
ATTENTION_NOTE = ("Attention weights of the risk model's MIL pooling: how much each zone's features weighed in the "
                  "model's summary of the exam (shares adding up to one). Not a measure of how diseased the zone is - "
                  "the zone's score says that - and a normal zone can carry most of the weight.")


def severity_model_card() -> dict[str, Any] | None:
    """The installed risk model's figures for the pages: version, calibration and patient-grouped
    CV accuracy (read from its weights' metadata); None when no severity weights are installed."""
    model = severity_model()
    if model is None:
        return None
    cv = (model.meta.get("ablation") or {}).get("covid_blues", {}).get(model.trained.kind, {})
    cal = model.meta.get("calibration") or {}
    folds = model.meta.get("cv") or {}
    return {
        "version": model.version, "calibrated": model.calibrated, "temperature": model.temperature,
        "severe_accuracy": cv.get("severe_accuracy_mean"), "severe_accuracy_sd": cv.get("severe_accuracy_sd"),
        "accuracy": cv.get("accuracy_mean"), "accuracy_sd": cv.get("accuracy_sd"),
        "ece": cal.get("ece"), "chance_ece": cal.get("chance_ece"), "ece_uncalibrated": cal.get("ece_uncalibrated"),
        "n_patients": cal.get("n_patients") or len(model.meta.get("training_patients") or []),
        "folds": folds.get("folds"), "seeds": len(folds.get("seeds") or []),
    }


def risk_block(prediction: Mapping[str, Any] | None, card: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The risk of a severe course as every page and the API show it, from a stored prediction
    (``label``, ``probs``, ``severe_probability``, ``model_version``; ``zone_attention`` optional)
    and the installed model's :func:`severity_model_card`.

    ``probability`` is clipped to :data:`~scoring.core.severity.calibration.DISPLAY_RANGE` (never 0 or
    1); ``calibrated`` is true when the installed, calibrated model made the prediction (an older
    model's stored probabilities are shown as they are, marked uncalibrated); ``model`` gives the
    figures to show beside it (those of the installed model, when it made the prediction)."""
    if prediction is None:
        return None
    same = card is not None and prediction.get("model_version") == card["version"]
    attention = prediction.get("zone_attention")
    return {
        "probability": displayed_probability(prediction["severe_probability"]),
        "outcome": OUTCOME,
        "calibrated": bool(same and card and card["calibrated"]),
        "course_class": prediction["label"],
        "class_probabilities": [displayed_probability(p) for p in prediction["probs"] or []],
        "model_version": prediction.get("model_version"),
        "model": dict(card) if same and card else None,
        "input_source": prediction.get("input_source"),
        **({"zone_attention": attention, "attention_note": ATTENTION_NOTE} if attention is not None else {}),
    }


def risk_payload(*, exam: Exam) -> dict[str, Any] | None:
    """The exam's ``risk_severe_course`` block (newest prediction; see :func:`risk_block`)."""
    pred = (SeverityPrediction.objects.filter(exam=exam).order_by("-created_at", "-pk")
            .values("label", "probs", "severe_probability", "model_version", "zone_attention", "input_source",
                    "clinical_record_id").first())
    if pred is None:
        return None
    return {**(risk_block(pred, severity_model_card()) or {}), "clinical_record": pred["clinical_record_id"]}
