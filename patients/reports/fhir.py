"""The exam report as FHIR: a Bundle (type ``collection``) of a DiagnosticReport and its Observations.

One Observation per scored zone (its score of record, code ``99LUSWEB`` LUSZ, body site the
protocol's zone, method the score's source, the AI's model version as its device) and one for the
LUSS (the sum, derived from the zones' Observations); the report's status is ``final`` when the
exam is reviewed (signed, nothing read since), else ``preliminary``, and its resultsInterpreter and
performer are the signer. Codes: :mod:`patients.reports.codes`.

The resources are checked with ``fhir.resources.R4B`` before they leave: FHIR R4B is R4 with the
same DiagnosticReport, Observation and Bundle elements used here (the package has no R4 module).

The subject is an identifier, not a Patient resource: the hospital number (with the name as its
display) for clinicians and study admins, the study's pseudonym (with the patient code) for
researchers, whose resources carry no date (no ``effectiveDateTime``, the day since day 0 in the
report's conclusion instead).
"""
from __future__ import annotations

import json
import uuid
from typing import Any

from patients.reports import codes
from patients.reports.content import ExamReport, ZoneLine
from patients.studies.protocols import get_protocol

NAMESPACE = uuid.UUID("6c1e9a57-0f53-4f1e-9a3c-2b8f6a4d2e10")


def _url(report: ExamReport, what: str) -> str:
    return f"urn:uuid:{uuid.uuid5(NAMESPACE, f'{report.study.pk}:{report.exam.pk}:{what}:{report.fingerprint()}')}"


def _coding(code: Any, system: str | None = None) -> dict[str, str]:
    systems = {codes.SCHEME: codes.FHIR_SYSTEM, "SCT": codes.SNOMED_SYSTEM, "UCUM": codes.UCUM_SYSTEM}
    return {"system": system or systems[code.scheme_designator], "code": code.value, "display": code.meaning}


def _subject(report: ExamReport) -> dict[str, Any]:
    study = report.study.pk
    if report.identifying and report.exam.patient.hospital_number:
        return {"identifier": {"system": f"urn:lusweb:study:{study}:hospital-number",
                               "value": report.hospital_number}, "display": report.patient_name or report.patient_code}
    return {"identifier": {"system": f"urn:lusweb:study:{study}:pseudonym", "value": report.pseudonym},
            "display": f"patient {report.patient_code}"}


def _status(report: ExamReport) -> str:
    return "final" if report.review.status == "reviewed" else "preliminary"


def _score(value: float) -> dict[str, Any]:
    return {"value": value, "unit": "score", "system": codes.UCUM_SYSTEM, "code": "{score}"}


def _common(report: ExamReport) -> dict[str, Any]:
    out: dict[str, Any] = {
        "resourceType": "Observation", "status": _status(report), "subject": _subject(report),
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                  "code": "imaging", "display": "Imaging"}]}]}
    if report.identifying:
        out["effectiveDateTime"] = report.exam.acquired_at.isoformat()
    return out


def _zone_observation(report: ExamReport, line: ZoneLine) -> dict[str, Any]:
    protocol = get_protocol(report.exam.protocol)
    obs = {**_common(report), "code": {"coding": [_coding(codes.ZONE_SCORE)], "text": f"LUS score, zone {line.zone.code}"},
           "valueQuantity": _score(float(line.score or 0)),
           "bodySite": {"coding": [_coding(codes.zone_code(protocol, line.zone))],
                        "text": f"{line.zone.code}: {line.zone.label}"},
           "method": {"coding": [_coding(codes.METHODS[line.kind or "ai"])], "text": line.source_text},
           "note": [{"text": f"Score of record: {line.source_text}."}]}
    if line.source == "clinician" and line.reader:
        obs["performer"] = [{"display": line.reader}]
    if line.source == "ai" and line.ai_model:
        obs["device"] = {"display": f"LUSWeb AI model {line.ai_model}"}
    return obs


def _total_observation(report: ExamReport, members: list[str]) -> dict[str, Any]:
    summary = report.summary
    return {**_common(report), "code": {"coding": [_coding(codes.LUSS)], "text": "LUSS (sum of the record scores)"},
            "valueQuantity": _score(float(summary.luss or 0)),
            "bodySite": {"coding": [_coding(codes.LUNG)], "text": "both lungs"},
            "derivedFrom": [{"reference": url} for url in members],
            "note": [{"text": f"{summary.clinician_zones} of {summary.scored} zones read by a clinician; "
                              f"AI, not reviewed: {', '.join(summary.ai_zones) or 'none'}."}]}


def _conclusion(report: ExamReport) -> str:
    s = report.summary
    if s.luss is None:
        return "No zone scored yet."
    mean = f"{s.mean:.2f}" if s.mean is not None else "-"
    text = (f"Exam {report.when}. LUSS {s.luss}/{s.max_luss} (score of record), mean {mean}, worst zone "
            f"{s.worst_zone} ({s.worst_score}). The clinician's reading is the score of record; "
            f"zones still the AI's, not reviewed: {', '.join(s.ai_zones) or 'none'}.")
    if report.models:
        text += f" AI model(s): {', '.join(report.models)}."
    return text


def _diagnostic_report(report: ExamReport, results: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "resourceType": "DiagnosticReport", "status": _status(report),
        "identifier": [{"system": f"urn:lusweb:study:{report.study.pk}:exam", "value": str(report.exam.pk)}],
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "US",
                                  "display": "Ultrasound"}]}],
        "code": {"coding": [{"system": codes.LOINC_SYSTEM, "code": codes.REPORT_LOINC[0],
                             "display": codes.REPORT_LOINC[1]}, _coding(codes.EXAM)], "text": "Lung ultrasound exam"},
        "subject": _subject(report), "result": [{"reference": url} for url in results],
        "conclusion": _conclusion(report)}
    if report.identifying:
        out["effectiveDateTime"] = report.exam.acquired_at.isoformat()
        out["issued"] = report.made_at.isoformat()
    if report.review.signed_by:
        signer = [{"display": report.review.signed_by}]
        out["performer"] = out["resultsInterpreter"] = signer
    return out


def exam_bundle(report: ExamReport) -> dict[str, Any]:
    """The Bundle as JSON, validated with ``fhir.resources.R4B`` (``ValidationError`` if not valid)."""
    from fhir.resources.R4B.bundle import Bundle  # lazy: the FHIR models load only for an export

    entries: list[dict[str, Any]] = []
    for line in report.zones:
        if line.score is not None:
            entries.append({"fullUrl": _url(report, f"zone:{line.zone.code}"),
                            "resource": _zone_observation(report, line)})
    zone_urls = [e["fullUrl"] for e in entries]
    if report.summary.luss is not None:
        entries.append({"fullUrl": _url(report, "luss"), "resource": _total_observation(report, zone_urls)})
    results = [e["fullUrl"] for e in entries]
    entries.insert(0, {"fullUrl": _url(report, "report"), "resource": _diagnostic_report(report, results)})
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": entries}
    checked = Bundle.model_validate(bundle)
    return json.loads(checked.model_dump_json(exclude_none=True))


def exam_fhir(report: ExamReport) -> bytes:
    """The Bundle as ``application/fhir+json`` bytes."""
    return json.dumps(exam_bundle(report), indent=1, ensure_ascii=False).encode()
