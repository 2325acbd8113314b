"""The export's six-class columns (the AI's severity on the scale of Hu et al.): the exam value in
every exam shape, each zone's in every zone shape, first and last at patient level, all from the
exported model (``model=``) and described in the data dictionary."""
from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from rest_framework.test import APIClient

from patients.records.models import Exam
from patients.studies.models import Role
from scoring.core.inference.six_class import SIX_CLASS_VALUES
from tests.factories import ExamFactory, PatientFactory, StudyFactory, members_by_role
from tests.patients.dashboards import builders

pytestmark = pytest.mark.django_db

#: Per exam (patient, day): zone -> frame classes of the active model (a zone with None has a clip
#: and a score but no six-class result).
EXAMS: list[tuple[int, int, dict[str, list[str] | None]]] = [
    (0, 2, {"R1": ["A-line", "B1-line", "B1-line"], "L1": ["consolidation"]}),
    (0, 4, {"R1": ["B2-line", "B2-line"], "R2": None}),
    (1, 3, {"L3": ["A&B-line"] * 4}),
]
OLD = {"R1": ["consolidation"] * 3, "L1": ["B1&B2-line"]}  # the inactive model's reading of the first exam


def _mean(*zones: list[str]) -> float:
    return float(np.mean([SIX_CLASS_VALUES[c] for classes in zones for c in classes]))


@pytest.fixture
def six_export(db: Any) -> dict[str, Any]:
    study = StudyFactory(name="Six export", protocol="blue-6")
    users = members_by_role(study, "sx-{role}")
    patients = [PatientFactory(study=study, admission_date=dt.date(2026, 3, 1)) for _ in range(2)]
    old, mv = builders.model_version("sx-old", active=False), builders.model_version("sx-active")
    exams: list[Exam] = []
    for patient, day, zones in EXAMS:
        exam = ExamFactory(patient=patients[patient], protocol="blue-6",
                           acquired_at=dt.datetime(2026, 3, 1 + day, 9, tzinfo=dt.UTC))
        clips = {z: builders.fake_clip(exam, z, frame_count=len(c or ["x", "x"])) for z, c in zones.items()}
        if not exams:
            builders.store_six_class(builders.record_scores(exam, dict.fromkeys(clips, 3), mv=old, clips=clips).job_id,
                                     OLD)
        job_id = builders.record_scores(exam, dict.fromkeys(clips, 1), mv=mv, clips=clips).job_id
        builders.store_six_class(job_id, {z: c for z, c in zones.items() if c})
        exams.append(exam)
    return {"study": study, "researcher": users[Role.RESEARCHER], "exams": exams}


def _rows(api: APIClient, study_id: int, **params: Any) -> list[dict[str, str]]:
    response = api.get(f"/api/v1/studies/{study_id}/export/", params)
    assert response.status_code == 200
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def _num(cell: str) -> float | None:
    return float(cell) if cell != "" else None


def test_exam_shapes_carry_the_exam_value_and_wide_its_zones(six_export: dict[str, Any],
                                                             api_for: Callable[..., APIClient]) -> None:
    api, study = api_for(six_export["researcher"]), six_export["study"]
    first = EXAMS[0][2]
    expected = [_mean(first["R1"], first["L1"]), _mean(EXAMS[1][2]["R1"]), 1.0]  # type: ignore[arg-type]
    assert expected[0] == 2.0  # (0 + 2 + 2) + 4 over 4 frames; the clip means' mean would be 2.67 (export: 4 decimals)
    for fmt in ("long", "wide"):
        rows = _rows(api, study.pk, level="exam", format=fmt)
        assert [_num(r["ai_six_class_mean"]) for r in rows] == pytest.approx(expected, abs=1e-4)
        assert [r["ai_six_class_frames"] for r in rows] == ["4", "2", "4"]  # R2 (no result) is not counted
        assert {r["model_version"] for r in rows} == {"sx-active"}
    wide = _rows(api, study.pk, level="exam", format="wide")
    assert _num(wide[0]["ai_six_class_blue-6:R1"]) == pytest.approx(4 / 3, abs=1e-4)
    assert (wide[0]["ai_six_class_blue-6:L1"], wide[1]["ai_six_class_blue-6:R2"], wide[2]["ai_six_class_blue-6:L3"]) == (
        "4.0", "", "1.0")
    old = _rows(api, study.pk, level="exam", model="sx-old")
    assert [_num(r["ai_six_class_mean"]) for r in old] == [_mean(*OLD.values()), None, None]
    assert _mean(*OLD.values()) == pytest.approx(14.5 / 4)


def test_zone_shapes_carry_each_clips_value(six_export: dict[str, Any], api_for: Callable[..., APIClient]) -> None:
    api, study = api_for(six_export["researcher"]), six_export["study"]
    rows = _rows(api, study.pk, level="zone")
    got = [(r["zone"], _num(r["zone_ai_six_class_mean"]), r["zone_ai_six_class_dominant"], _num(r["ai_six_class_mean"]))
           for r in rows]
    assert got == [("R1", pytest.approx(4 / 3, abs=1e-4), "B1-line", 2.0), ("L1", 4.0, "consolidation", 2.0),
                   ("R1", 3.0, "B2-line", 3.0), ("R2", None, "", 3.0), ("L3", 1.0, "A&B-line", 1.0)]
    course = _rows(api, study.pk, level="zone", format="wide")
    by = {(r["patient"], r["zone"]): r for r in course}
    r1 = next(r for (_, zone), r in by.items() if zone == "R1")
    assert (_num(r1["exam1_ai_six_class"]), _num(r1["exam2_ai_six_class"])) == (pytest.approx(4 / 3, abs=1e-4), 3.0)
    l1 = next(r for (_, zone), r in by.items() if zone == "L1")
    assert (l1["exam1_ai_six_class"], l1["exam2_ai_six_class"], l1["exam2_record"]) == ("4.0", "", "")
    old = _rows(api, study.pk, level="zone", format="wide", model="sx-old")
    assert next(r for r in old if r["zone"] == "R1")["exam1_ai_six_class"] == "4.0"


def test_patient_level_and_the_dictionary(six_export: dict[str, Any], api_for: Callable[..., APIClient]) -> None:
    api, study = api_for(six_export["researcher"]), six_export["study"]
    rows = _rows(api, study.pk, level="patient")
    assert [(r["first_ai_six_class_mean"], r["last_ai_six_class_mean"]) for r in rows] == [("2.0", "3.0"),
                                                                                          ("1.0", "1.0")]
    for level, fmt, names in (("exam", "long", ["ai_six_class_mean", "ai_six_class_frames"]),
                              ("zone", "long", ["zone_ai_six_class_mean", "zone_ai_six_class_dominant",
                                                "ai_six_class_mean"]),
                              ("exam", "wide", ["ai_six_class_blue-6:R1"]), ("zone", "wide", ["exam2_ai_six_class"]),
                              ("patient", "long", ["first_ai_six_class_mean"])):
        response = api.get(f"/api/v1/studies/{study.pk}/export/", {"level": level, "format": fmt, "dictionary": "1"})
        meanings = {r["column"]: r for r in csv.DictReader(io.StringIO(response.content.decode()))}
        for name in names:
            assert "six-class" in meanings[name]["meaning"].lower(), (level, fmt, name)
            unit = {"ai_six_class_frames": "frames", "zone_ai_six_class_dominant": ""}.get(name, "0-4")
            assert meanings[name]["unit"] == unit, (level, fmt, name)
        if level == "exam" and fmt == "long":
            exam_meaning = meanings["ai_six_class_mean"]["meaning"]
            assert "a clip weighs by its frame count" in exam_meaning and "B1&B2-line 2.5" in exam_meaning
            assert "no clinician reads this scale" in exam_meaning
