"""The exam report as a DICOM Structured Report: a Comprehensive 3D SR holding a TID 1500
Measurement Report (highdicom).

One measurement group (TID 1501) per scored zone: its score of record (``99LUSWEB`` LUSZ, unit
UCUM ``{score}``) with two finding sites - the lung with its laterality and region (SNOMED CT) and
the protocol's zone (``99LUSWEB`` ``<protocol>:<zone>``) - and the score's source as the
measurement method (clinician reading, adjudication, or AI reading, not reviewed, the AI's with its
algorithm identification: the model version). One more group holds the LUSS (the sum) and the mean.
Every group carries the subject's time point (TID 1502): the exam's day since day 0 as a
longitudinal temporal offset from the hospital admission (or from the baseline: the first exam).
Codes: :mod:`patients.reports.codes`.

Patient and study: a clinician or study admin of a study that keeps identities gets the patient's
name and hospital number and the exam's date. Everyone else - researchers, and every reader of a
de-identifying study - gets the study's pseudonym (the de-identified clips' PatientID), no dates
(``PatientIdentityRemoved`` YES) and remapped UIDs: the clips' Study Instance UID as the study keeps
it (already remapped in de-identifying studies), remapped with the study's key otherwise. The SR's
own UIDs are derived from the study's key, the exam and what the report says
(:func:`patients.imaging.core.deid.remap_uid`): the same report is the same instance.

The SR references no image (the clips' series are not recorded), so it lists no evidence.
"""
from __future__ import annotations

import io
from typing import Any

from lusweb.errors import ServiceError
from patients.imaging.core import deid
from patients.reports import codes
from patients.reports.content import ExamReport, ZoneLine
from patients.studies.protocols import get_protocol

MANUFACTURER = "LUSWeb"
SERIES_NUMBER = 900


def _c(code: codes.Code) -> Any:
    from pydicom.sr.coding import Code  # lazy: pydicom only when an SR is made

    return Code(code.value, code.scheme_designator, code.meaning)


def _person(name: str) -> str:
    """A free-text name as a DICOM person name of one component (the family name group, PS3.5
    6.2.1.2: the trailing caret says it was not split into parts)."""
    return name.replace("^", " ").replace("=", " ").replace("\\", " ").strip()[:60] + "^"


def pseudonymous(report: ExamReport) -> bool:
    """The SR leaves identity and dates out: a researcher, or a de-identifying study."""
    return bool(report.study.deidentify or not report.identifying)


def study_uid(report: ExamReport) -> str:
    """The Study Instance UID of the SR: the clips' study, remapped where the copy must be."""
    study, uid = report.study, report.clip_study_uid
    if not uid:
        return deid.remap_uid(study.secret, f"exam:{report.exam.pk}")
    return deid.remap_uid(study.secret, uid) if pseudonymous(report) and not study.deidentify else uid


def _uid(report: ExamReport, what: str) -> str:
    return deid.remap_uid(report.study.secret, f"report-sr:{report.exam.pk}:{what}")


def _subject(report: ExamReport) -> Any:
    """A dataset with the Patient and General Study modules the SR copies (highdicom's ``evidence``)."""
    from pydicom.dataset import Dataset  # lazy: pydicom only when an SR is made

    ds = Dataset()
    hidden = pseudonymous(report)
    patient = report.exam.patient
    ds.PatientName = _person(report.pseudonym if hidden else (patient.name or patient.code))
    ds.PatientID = report.pseudonym if hidden else (patient.hospital_number or patient.code)
    ds.PatientBirthDate = ""
    ds.PatientSex = "" if hidden else {"F": "F", "M": "M", "O": "O"}.get(patient.sex, "")
    ds.StudyInstanceUID = study_uid(report)
    acquired = report.exam.acquired_at
    ds.StudyDate = "" if hidden else acquired.strftime("%Y%m%d")
    ds.StudyTime = "" if hidden else acquired.strftime("%H%M%S")
    ds.AccessionNumber = ds.StudyID = ds.ReferringPhysicianName = ""
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.3.1"  # a placeholder instance; its reference is dropped
    ds.SOPInstanceUID = _uid(report, "subject")
    ds.SeriesInstanceUID = _uid(report, "subject-series")
    return ds


def _time_point(report: ExamReport) -> Any:
    import highdicom as hd  # lazy: highdicom only when an SR is made

    offset = None
    if report.day is not None:
        event = _c(codes.ADMISSION) if report.day_zero_kind == "admission" else _c(codes.BASELINE)
        offset = hd.sr.LongitudinalTemporalOffsetFromEvent(value=report.day, unit=_c(codes.DAYS), event_type=event)
    label = f"day {report.day:.2f}" if report.day is not None else "day unknown"
    return hd.sr.TimePointContext(time_point=label, subject_time_point_identifier=label,
                                  temporal_offset_from_event=offset)


def _zone_group(report: ExamReport, line: ZoneLine, time_point: Any) -> Any:
    import highdicom as hd  # lazy: highdicom only when an SR is made

    protocol = get_protocol(report.exam.protocol)
    zone = line.zone
    algorithm = (hd.sr.AlgorithmIdentification(name="LUSWeb zone scorer", version=line.ai_model)
                 if line.source == "ai" and line.ai_model else None)
    measurement = hd.sr.Measurement(
        name=_c(codes.ZONE_SCORE), value=float(line.score or 0), unit=_c(codes.SCORE_UNIT),
        method=_c(codes.METHODS[line.kind or "ai"]), algorithm_id=algorithm)
    sites = [hd.sr.FindingSite(anatomic_location=_c(codes.LUNG), laterality=_c(codes.LATERALITY[zone.side]),
                               topographical_modifier=_c(codes.REGION[zone.region])),
             hd.sr.FindingSite(anatomic_location=_c(codes.zone_code(protocol, zone)))]
    tracking = hd.sr.TrackingIdentifier(uid=_uid(report, f"zone:{zone.code}"), identifier=f"zone {zone.code}")
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=tracking, time_point_context=time_point, finding_sites=sites, measurements=[measurement])


def _total_group(report: ExamReport, time_point: Any) -> Any:
    import highdicom as hd  # lazy: highdicom only when an SR is made

    summary = report.summary
    measurements = [hd.sr.Measurement(name=_c(codes.LUSS), value=float(summary.luss or 0), unit=_c(codes.SCORE_UNIT))]
    if summary.mean is not None:
        measurements.append(hd.sr.Measurement(name=_c(codes.MEAN), value=round(summary.mean, 4), unit=_c(codes.SCORE_UNIT)))
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=_uid(report, "luss"), identifier="LUSS"),
        time_point_context=time_point,
        finding_sites=[hd.sr.FindingSite(anatomic_location=_c(codes.LUNG), laterality=_c(codes.BOTH_SIDES))],
        measurements=measurements)


def _observers(report: ExamReport) -> Any:
    import highdicom as hd  # lazy: highdicom only when an SR is made
    from pydicom.sr.codedict import codes as codes_dict  # lazy: pydicom only for a report

    person = device = None
    if report.review.signed_by:
        person = hd.sr.ObserverContext(
            observer_type=hd.sr.CodedConcept.from_code(codes_dict.DCM.Person),
            observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(
                name=_person(report.review.signed_by)))
    if report.models:
        device = hd.sr.ObserverContext(
            observer_type=hd.sr.CodedConcept.from_code(codes_dict.DCM.Device),
            observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
                uid=deid.remap_uid(report.study.secret, "lusweb-ai"), name="LUSWeb AI",
                manufacturer_name=MANUFACTURER, model_name=", ".join(report.models)[:64]))
    return hd.sr.ObservationContext(observer_person_context=person, observer_device_context=device)


def exam_sr(report: ExamReport) -> bytes:
    """The report as a DICOM SR file (Part 10 bytes); 409 ``no_scores`` while no zone has a score."""
    import highdicom as hd  # lazy: highdicom only when an SR is made
    from pydicom.sr.codedict import codes as codes_dict  # lazy: pydicom only for a report

    if report.summary.luss is None:  # TID 1500 needs a measurement group
        raise ServiceError("the exam has no zone score yet: a DICOM SR has nothing to report", code="no_scores",
                           status=409)
    time_point = _time_point(report)
    groups = [_zone_group(report, line, time_point) for line in report.zones if line.score is not None]
    groups.append(_total_group(report, time_point))
    content = hd.sr.MeasurementReport(
        observation_context=_observers(report), procedure_reported=_c(codes.EXAM), imaging_measurements=groups,
        title=codes_dict.DCM.ImagingMeasurementReport)
    reviewed = report.review.status == "reviewed"
    fingerprint = report.fingerprint()
    sr = hd.sr.Comprehensive3DSR(
        evidence=[_subject(report)], content=content[0], series_instance_uid=_uid(report, "series"),
        series_number=SERIES_NUMBER, sop_instance_uid=_uid(report, f"instance:{fingerprint}"), instance_number=1,
        manufacturer=MANUFACTURER, is_complete=not report.summary.ai_zones and report.summary.scored > 0,
        is_final=reviewed, is_verified=reviewed,
        verifying_observer_name=_person(report.review.signed_by or "") if reviewed else None,
        verifying_organization=MANUFACTURER if reviewed else None, series_description="LUS exam report",
        record_evidence=False)
    _finish(sr, report)
    out = io.BytesIO()
    sr.save_as(out, enforce_file_format=True)
    return out.getvalue()


def _finish(sr: Any, report: ExamReport) -> None:
    """Drop the placeholder's evidence reference, declare the private coding scheme, mark a
    pseudonymous copy as such."""
    from pydicom.dataset import Dataset  # lazy: pydicom only when an SR is made

    scheme = Dataset()
    scheme.CodingSchemeDesignator = codes.SCHEME
    scheme.CodingSchemeName = "LUSWeb lung ultrasound codes"
    scheme.CodingSchemeResponsibleOrganization = "LUSWeb"
    sr.CodingSchemeIdentificationSequence = [scheme]
    for keyword in ("CurrentRequestedProcedureEvidenceSequence", "PertinentOtherEvidenceSequence"):
        if keyword in sr:
            del sr[keyword]
    if pseudonymous(report):
        sr.PatientName = report.pseudonym  # as the de-identified clips have it
        sr.PatientIdentityRemoved = "YES"
        sr.DeidentificationMethod = "LUSWeb report: study pseudonym, no dates, remapped UIDs"
