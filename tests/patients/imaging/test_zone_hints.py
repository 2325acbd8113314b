"""``POST /api/v1/exams/<id>/zone-hints/``: the zone each file of a batch gives, from the first
256 KiB the browser sends: a DICOM file's zone attribute by the study's rule, else the file name;
only zones of the exam's protocol; nothing stored; members only."""
from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pydicom
import pytest
from rest_framework.test import APIClient

from patients.imaging.core.phantoms import phantom_cohort_clip, write_dicom
from patients.imaging.models import ZoneClip
from patients.imaging.zone_hints import HEAD_BYTES
from patients.imaging.zone_rules import _NAME_ZONE
from patients.records.models import Exam
from tests.conftest import ROOT
from tests.factories import ExamFactory, PatientFactory, StudyFactory, UserFactory, members_by_role

pytestmark = pytest.mark.django_db


def _dicom(**attributes: str) -> bytes:
    """A 40-frame phantom cine (over 256 KiB) with ``attributes`` set (``""`` removes one)."""
    buf = io.BytesIO()
    write_dicom(phantom_cohort_clip(1, seed=3, n_frames=40, rows=224, columns=224), buf)
    ds = pydicom.dcmread(io.BytesIO(buf.getvalue()))
    for keyword, value in attributes.items():
        if value:
            setattr(ds, keyword, value)
        elif keyword in ds:
            delattr(ds, keyword)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    data = out.getvalue()
    assert len(data) > HEAD_BYTES  # the hint reads only the head, as the browser sends it
    return data


def _file(name: str, data: bytes) -> io.BytesIO:
    f = io.BytesIO(data[:HEAD_BYTES])
    f.name = name
    return f


@pytest.fixture
def exam(db: Any) -> Exam:
    study = StudyFactory(protocol="blue-6")
    members_by_role(study, "hint-{role}")
    return ExamFactory(patient=PatientFactory(study=study))


def _post(api_for: Callable[..., Any], user: Any, exam: Exam, files: list[io.BytesIO]) -> Any:
    return api_for(user).post(f"/api/v1/exams/{exam.pk}/zone-hints/", {"files": files}, format="multipart")


def _user(exam: Exam, role: str) -> Any:
    return exam.study.memberships.get(role=role).user


def test_dicom_attribute_then_name(exam: Exam, api_for: Callable[..., Any]) -> None:
    files = [
        _file("IMG0001.dcm", _dicom(SeriesDescription="Lung zone L2 cine")),  # the header names it
        _file("scan_R3.dcm", _dicom(SeriesDescription="")),  # no attribute: the name
        _file("scan_R1.dcm", _dicom(SeriesDescription="B-mode R5")),  # R5 is no BLUE-6 zone: the name
        _file("patient_11_L1.mp4", b"\x00\x00\x00\x20ftypisom" + bytes(64)),
        _file("exam-r2-loop.avi", b"RIFF" + bytes(64)),
        _file("patient_11_R4.mp4", b"\x00" * 64),  # R4: not a zone of the protocol
        _file("IMG0002.dcm", _dicom(SeriesDescription="no zone here")),
    ]
    response = _post(api_for, _user(exam, "clinician"), exam, files)
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["protocol"], body["tag"]) == ("blue-6", "SeriesDescription")
    got = [(h["name"], h["zone"], h["source"], h["dicom"]) for h in body["hints"]]
    assert got == [
        ("IMG0001.dcm", "L2", "dicom", True), ("scan_R3.dcm", "R3", "name", True), ("scan_R1.dcm", "R1", "name", True),
        ("patient_11_L1.mp4", "L1", "name", False), ("exam-r2-loop.avi", "R2", "name", False),
        ("patient_11_R4.mp4", None, "", False), ("IMG0002.dcm", None, "", True),
    ]
    assert body["hints"][0]["value"] == "Lung zone L2 cine" and body["hints"][2]["value"] == "B-mode R5"
    assert not ZoneClip.all_objects.exists()  # nothing stored


def test_the_studys_own_attribute_and_pattern(exam: Exam, api_for: Callable[..., Any]) -> None:
    study = exam.study
    study.dicom_zone_tag, study.dicom_zone_pattern = "ImageComments", r"site=(\w+)"
    study.save(update_fields=["dicom_zone_tag", "dicom_zone_pattern"])
    files = [_file("a.dcm", _dicom(ImageComments="site=l3; depth 12", SeriesDescription="R1")),
             _file("b_R2.dcm", _dicom(ImageComments="site=x9"))]
    hints = _post(api_for, _user(exam, "researcher"), exam, files).json()["hints"]
    assert [(h["zone"], h["source"], h["value"]) for h in hints] == [("L3", "dicom", "site=l3; depth 12"),
                                                                    ("R2", "name", "site=x9")]


def test_a_header_cut_short_falls_back_to_the_name(exam: Exam, api_for: Callable[..., Any]) -> None:
    head = _dicom(SeriesDescription="L1")[:200]  # cut inside the file meta
    hint = _post(api_for, _user(exam, "clinician"), exam, [_file("x_R2.dcm", head)]).json()["hints"][0]
    assert (hint["zone"], hint["source"], hint["dicom"], hint["value"]) == ("R2", "name", True, "")


def test_refusals(exam: Exam, api_for: Callable[..., Any]) -> None:
    clinician = _user(exam, "clinician")
    response = _post(api_for, clinician, exam, [])
    assert response.status_code == 400 and response.json()["code"] == "no_files"
    many = [_file(f"f{i}_R1.mp4", b"x") for i in range(65)]
    response = _post(api_for, clinician, exam, many)
    assert response.status_code == 400 and response.json()["code"] == "too_many_files"
    outsider = UserFactory()
    members_by_role(StudyFactory(), "other-{role}")
    assert _post(api_for, outsider, exam, [_file("a_R1.mp4", b"x")]).status_code == 404
    anon = APIClient().post(f"/api/v1/exams/{exam.pk}/zone-hints/", {"files": [_file("a_R1.mp4", b"x")]},
                            format="multipart")
    assert anon.status_code in (401, 403)


def test_the_browser_mirrors_the_file_name_rule() -> None:
    """batch-upload.js reads zones from names with the same regular expression as zone_rules."""
    script = (Path(ROOT) / "static" / "js" / "batch-upload.js").read_text()
    assert f"/{_NAME_ZONE.pattern}/gi" in script
