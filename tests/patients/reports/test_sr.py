"""The DICOM SR report: dciodvfy finds no error, dsrdump reads it, and pydicom/highdicom read back
the codes and values of the database."""
from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path
from typing import Any

import highdicom as hd
import pydicom
from pydicom.sr.coding import Code

from patients.imaging.core import deid
from patients.reports.content import exam_report
from patients.reports.sr import exam_sr
from patients.studies.models import Role
from patients.studies.protocols import get_protocol
from tests.conftest import require
from tests.dicom3tools import dciodvfy
from tests.patients.reports.conftest import CODES, Case, output_dir, sign_all

ZONE_SCORE = ("LUSZ", "99LUSWEB")
LUSZ = Code("LUSZ", "99LUSWEB", "Lung ultrasound zone score")


def _sr(case: Case, role: str, name: str) -> tuple[Any, Path]:
    data = exam_sr(exam_report(exam=case.exam, user=case.users[role]))
    path = output_dir("exam-report") / name
    path.write_bytes(data)
    return pydicom.dcmread(io.BytesIO(data)), path


def _code(item: Any) -> tuple[str, str]:
    return (str(item.CodeValue), str(item.CodingSchemeDesignator))


def _groups(ds: Any) -> list[Any]:
    report = hd.sr.Comprehensive3DSR.from_dataset(ds).content
    assert isinstance(report, hd.sr.MeasurementReport)
    return list(report.get_image_measurement_groups())


def _algorithm_version(measurement: Any) -> str | None:
    """The measurement's Algorithm Version (DCM 111003), if it has an algorithm identification."""
    for item in getattr(measurement, "ContentSequence", []):
        if item.ConceptNameCodeSequence[0].CodeValue == "111003":
            return str(item.TextValue)
    return None


def _zone_of(group: Any) -> str:
    sites = group.finding_sites
    zone = [s for s in sites if s.value.scheme_designator == "99LUSWEB"]
    assert len(zone) == 1
    return str(zone[0].value.value).split(":")[1]


def _validates(path: Path) -> None:
    verdict = dciodvfy(path)
    assert not verdict.errors, verdict.output
    exe = shutil.which("dsrdump")
    require(exe is not None, "dsrdump not installed (Debian package dcmtk)")
    assert exe is not None
    run = subprocess.run([exe, str(path)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "Imaging Measurement Report" in run.stdout and "Lung ultrasound zone score" in run.stdout


def test_sr_validates_and_reads_back_the_record(case: Case) -> None:
    ds, path = _sr(case, Role.CLINICIAN, "report-clinician.dcm")
    _validates(path)
    assert ds.SOPClassUID == hd.sr.Comprehensive3DSR.from_dataset(ds).SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.34"
    assert ds.ConceptNameCodeSequence[0].CodeValue == "126000"  # Imaging Measurement Report (TID 1500)
    assert ds.PatientName.family_name == "Ana Lima Ferreira" and ds.PatientID == "H7654321"
    assert ds.StudyInstanceUID == "1.2.826.0.1.3680043.8.498.1234" and ds.StudyDate == "20260304"
    assert ds.PreliminaryFlag == "PRELIMINARY" and ds.VerificationFlag == "UNVERIFIED"
    groups = _groups(ds)
    zones = {}
    for group in groups:
        if group.tracking_identifier == "LUSS":
            total = group
            continue
        zones[_zone_of(group)] = group
    assert set(zones) == set(CODES)
    protocol = get_protocol("12-zone")
    for code, group in zones.items():
        (m,) = group.get_measurements(name=LUSZ)
        assert _code(m.name) == ZONE_SCORE and m.value == case.record[code]
        assert (m.unit.value, m.unit.scheme_designator) == ("{score}", "UCUM")
        method = m.method
        assert method is not None
        assert method.value == ("AIREAD" if case.source[code] == "ai" else "CLINREAD")
        assert _algorithm_version(m[0]) == ("lus-test-7" if case.source[code] == "ai" else None)
        lung = next(s for s in group.finding_sites if s.value.scheme_designator == "SCT")
        assert lung.value.value == "39607008"
        side = protocol.zone(code).side
        assert lung.laterality.value == {"right": "24028007", "left": "7771000"}[side]
        assert lung.topographical_modifier.value == {"anterior": "255549009", "lateral": "49370004",
                                                     "posterior": "255551008"}[protocol.zone(code).region]
    luss = {str(m.name.value): m.value for m in total.get_measurements() if m.name.scheme_designator == "99LUSWEB"}
    assert luss["LUSS"] == sum(case.record.values())
    assert abs(luss["LUSMEAN"] - sum(case.record.values()) / 12) < 1e-3


def _time_point(ds: Any) -> dict[str, Any]:
    """The first group's TID 1502 items: concept code -> value."""
    for item in ds.ContentSequence:
        if item.ValueType != "CONTAINER" or item.ConceptNameCodeSequence[0].CodeValue != "126010":
            continue
        group = item.ContentSequence[0]
        out: dict[str, Any] = {}
        for child in group.ContentSequence:
            concept = child.ConceptNameCodeSequence[0].CodeValue
            if concept == "C2348792":  # Time Point
                out["time_point"] = child.TextValue
            if concept == "128740":  # Longitudinal Temporal Offset from Event
                out["days"] = float(child.MeasuredValueSequence[0].NumericValue)
                out["event"] = child.ContentSequence[0].ConceptCodeSequence[0].CodeValue
        return out
    raise AssertionError("no measurement group")


def test_sr_time_point_is_days_since_admission(case: Case) -> None:
    ds, _ = _sr(case, Role.CLINICIAN, "report-clinician.dcm")
    found = _time_point(ds)
    assert found["days"] == 3.5 and found["event"] == "32485007" and found["time_point"] == "day 3.50"


def test_signed_sr_is_final_and_verified(case: Case) -> None:
    sign_all(case)
    ds, path = _sr(case, Role.CLINICIAN, "report-signed.dcm")
    _validates(path)
    assert ds.PreliminaryFlag == "FINAL" and ds.VerificationFlag == "VERIFIED" and ds.CompletionFlag == "COMPLETE"
    assert ds.VerifyingObserverSequence[0].VerifyingObserverName.family_name == "clinician-rep"
    assert ds.CodingSchemeIdentificationSequence[0].CodingSchemeDesignator == "99LUSWEB"
    methods = {m.method.value for g in _groups(ds) for m in g.get_measurements(name=LUSZ) if m.method is not None}
    assert methods == {"CLINREAD"}


def test_researcher_sr_is_pseudonymous(case: Case) -> None:
    ds, path = _sr(case, Role.RESEARCHER, "report-researcher.dcm")
    _validates(path)
    pseudonym = deid.pseudonym(case.study.secret, case.patient.pk)
    assert str(ds.PatientName) == ds.PatientID == pseudonym
    assert ds.PatientIdentityRemoved == "YES" and ds.StudyDate == ""
    assert ds.StudyInstanceUID == deid.remap_uid(case.study.secret, case.exam.study_instance_uid)
    raw = path.read_bytes()
    for secret in (b"Ana Lima", b"H7654321", b"20260304", b"1.2.826.0.1.3680043.8.498.1234"):
        assert secret not in raw, secret


def test_deidentifying_study_uses_the_clips_study_uid(case: Case) -> None:
    case.study.deidentify = True
    case.study.save(update_fields=["deidentify"])
    remapped = deid.remap_uid(case.study.secret, "1.2.3.4.5")
    case.exam.clips.update(study_instance_uid=remapped)
    ds, path = _sr(case, Role.CLINICIAN, "report-deidentified.dcm")
    _validates(path)
    assert ds.StudyInstanceUID == remapped
    assert ds.PatientID == deid.pseudonym(case.study.secret, case.patient.pk)
    assert b"Ana Lima" not in path.read_bytes()


def test_without_admission_day_zero_is_the_first_exam(case: Case) -> None:
    case.patient.admission_date = None
    case.patient.save(update_fields=["admission_date"])
    ds, path = _sr(case, Role.CLINICIAN, "report-baseline.dcm")
    _validates(path)
    found = _time_point(ds)
    days = (case.exam.acquired_at - case.previous.acquired_at).total_seconds() / 86400
    assert found["event"] == "121079" and found["days"] == round(days, 2) == 2.12  # DCM Baseline; 2 d 3 h
