"""Patient severity at an exam (Django glue around ``scoring.core.severity*``).

Runs as the last step of a scoring job: the zone features come from the same CNN pass that
scored the zones, the clinical record is the latest one before the exam within
``SEVERITY_CLINICAL_WINDOW_DAYS``, and the prediction is stored with its model version.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings

from patients.records.models import ClinicalInfo, Exam
from patients.studies.protocols import PROTOCOLS, get_protocol
from scoring.models import ScoringJob, SeverityPrediction

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

                _model[str(path)] = load_severity(path)
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


def severity_predict(*, job: ScoringJob, exam: Exam, scored: dict[str, tuple[Any, np.ndarray]]
                     ) -> SeverityPrediction | None:
    """Predict and store the exam's severity. ``scored``: zone -> (clip result, frame features)."""
    from scoring.core.severity.features import sampled_zone_features, vote  # lazy: torch, worker only

    model = severity_model()
    if model is None:
        return None
    wanted = model.meta.get("frame_scorer_version")
    have = next(iter(scored.values()))[0].model if scored else None
    if wanted and have and wanted != have:
        # Zone features come from the frame scorer: another scorer means other features.
        logger.warning("severity model %s needs frame scorer %s, job used %s: no severity", model.version, wanted,
                       have)
        return None
    mapping = zone_mapping(exam.protocol, model.trained.zones, str(model.meta.get("protocol", "blue-6")))
    present = {zone: scored[zone] for zone in mapping if zone in scored}
    if not present:
        return None
    record = clinical_for_exam(exam)
    clinical = clinical_dict(record, exam)
    sets = {zone: sampled_zone_features(r, f, seed=job.pk or 0) for zone, (r, f) in present.items()}
    predictions = []
    for i in range(len(next(iter(sets.values())))):
        features = {mapping[zone]: s[i] for zone, s in sets.items()}
        pred = model.predict_exam(features, clinical)
        # Report attention on the exam's own zone codes.
        back = {v: k for k, v in mapping.items()}
        pred["zone_attention"] = {back[z]: a for z, a in pred["zone_attention"].items()}
        predictions.append(pred)
    result = vote(predictions)
    prediction, _ = SeverityPrediction.objects.update_or_create(
        exam=exam, job=job,
        defaults={"model_version": model.version, "label": result["label"], "probs": result["probs"],
                  "severe_probability": result["severe_probability"], "zone_attention": result["zone_attention"],
                  "clinical_record": record},
    )
    return prediction


def severity_payload(*, exam: Exam) -> dict[str, Any] | None:
    """The ``severity`` block of ``GET /api/v1/exams/<id>/`` (newest prediction)."""
    pred = SeverityPrediction.objects.filter(exam=exam).order_by("-created_at", "-pk").first()
    if pred is None:
        return None
    return {"label": pred.label, "probs": pred.probs, "severe_probability": pred.severe_probability,
            "zone_attention": pred.zone_attention, "model_version": pred.model_version,
            "clinical_record": pred.clinical_record_id, "job": pred.job_id}
