"""The ward list (``/studies/<id>/ward/``): each column's number against the seeded records, sorting by
every key with missing values last, a bounded number of queries, and who sees what."""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from patients.alerts.models import Alert, AlertState
from patients.audit.models import AuditAction, AuditEvent
from patients.dashboards.ward import SORT_KEYS, sort_rows, ward_rows
from patients.readings.services import exam_sign, reading_create
from patients.records.models import Patient
from patients.studies.models import Study
from tests.conftest import signed_in
from tests.factories import BloodGasFactory, ExamFactory, PatientFactory, StudyFactory, UserFactory, members_by_role
from tests.patients.dashboards import builders

pytestmark = pytest.mark.django_db
UTC = dt.UTC
NOW = dt.datetime(2026, 3, 10, 12, tzinfo=UTC)
CODES = ("R1", "R2", "R3", "L1", "L2", "L3")


@dataclass
class Ward:
    study: Study
    users: dict[str, Any]
    patients: dict[str, Patient]
    exams: dict[str, list[Any]]


def _alert(patient: Patient, key: str, state: str = AlertState.OPEN) -> None:
    Alert.objects.create(study=patient.study, patient=patient, kind="global_score", key=key, message="m", state=state)


def _exam(patient: Patient, day: int, scores: dict[str, int], mv: Any, protocol: str = "blue-6") -> Any:
    exam = ExamFactory(patient=patient, acquired_at=dt.datetime(2026, 3, day, 9, tzinfo=UTC), protocol=protocol)
    builders.record_scores(exam, scores, mv=mv)
    return exam


@pytest.fixture
def seeded(db: Any) -> Ward:
    """A BLUE-6 study. A: two exams (AI 6, then 12 read by a clinician who changed R1 to 3: 13, signed,
    then R2 changed to 3 after sign-off: 14, amended), two gases, two open alerts and one acknowledged.
    B (no admission date): AI 0 then AI 6, draft, one gas, one open alert. C: nothing. D: one exam
    (12-zone protocol, AI 12 of 36), a gas without FiO2."""
    study = StudyFactory(name="Ward 3", protocol="blue-6")
    users = members_by_role(study, "ward-{role}")
    clinician = users["clinician"]
    mv = builders.model_version()
    a = PatientFactory(study=study, code="A", admission_date=dt.date(2026, 3, 1), name="Ann Secret",
                       hospital_number="HN-A")
    b = PatientFactory(study=study, code="B", admission_date=None)
    c = PatientFactory(study=study, code="C", admission_date=dt.date(2026, 3, 6))
    d = PatientFactory(study=study, code="D", admission_date=dt.date(2026, 3, 4))
    a1 = _exam(a, 2, dict.fromkeys(CODES, 1), mv)
    a2 = _exam(a, 5, dict.fromkeys(CODES, 2), mv)
    for clip in a2.clips.all():
        reading_create(clip=clip, by=clinician, score=3 if clip.zone == "R1" else 2)
    exam_sign(exam=a2, by=clinician)
    reading_create(clip=a2.clips.get(zone="R2"), by=clinician, score=3)
    b1 = _exam(b, 3, dict.fromkeys(CODES, 0), mv)
    b2 = _exam(b, 8, dict.fromkeys(CODES, 1), mv)
    d1 = _exam(d, 6, dict.fromkeys(("R1", "R2", "R3", "R4", "R5", "R6", "L1", "L2", "L3", "L4", "L5", "L6"), 1),
               mv, protocol="12-zone")
    BloodGasFactory(patient=a, sampled_at=dt.datetime(2026, 3, 2, 8, tzinfo=UTC), pao2_mmhg=90.0, fio2=0.21,
                    paco2_mmhg=38.0)
    BloodGasFactory(patient=a, sampled_at=dt.datetime(2026, 3, 5, 11, tzinfo=UTC), pao2_mmhg=80.0, fio2=0.4,
                    paco2_mmhg=45.0)
    BloodGasFactory(patient=b, sampled_at=dt.datetime(2026, 3, 8, 10, tzinfo=UTC), pao2_mmhg=60.0, fio2=0.5,
                    paco2_mmhg=52.0)
    BloodGasFactory(patient=d, sampled_at=dt.datetime(2026, 3, 6, 10, tzinfo=UTC), pao2_mmhg=70.0, fio2=None,
                    paco2_mmhg=41.0)
    _alert(a, "a1")
    _alert(a, "a2")
    _alert(a, "a3", AlertState.ACKNOWLEDGED)
    _alert(b, "b1")
    return Ward(study, users, {"A": a, "B": b, "C": c, "D": d}, {"A": [a1, a2], "B": [b1, b2], "D": [d1]})


def _by_code(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["code"]: r for r in rows}


def test_each_column_against_the_records(seeded: Ward) -> None:
    rows = _by_code(ward_rows(study=seeded.study, user=seeded.users["clinician"], now=NOW))
    a, b, c, d = rows["A"], rows["B"], rows["C"], rows["D"]
    # A: the record of the latest exam is the clinician's (R1 3, R2 3 after sign-off, four 2s) = 14 of 18.
    assert (a["score"]["luss"], a["score"]["max_luss"], a["score"]["source"]) == (14, 18, "clinician")
    assert a["score_pct"] == round(100 * 14 / 18, 1) == 77.8
    assert a["change_pct"] == round(77.8 - 33.3, 1) and a["change"] == 14 - 6
    assert a["review_status"] == "amended"  # a reading changed after the signature
    assert a["exam"]["id"] == seeded.exams["A"][1].pk
    assert a["open_alerts"] == 2
    assert (a["gas"]["pf"], a["gas"]["paco2"]) == (200, 45.0)  # the latest gas: 80 / 0.4
    assert a["gas"]["label"] == "2026-03-05 11:00"
    assert a["days"] == 9 and a["day_zero"] == "admission"
    assert (a["name"], a["hospital_number"]) == ("Ann Secret", "HN-A")
    # B: the AI's scores only, never signed; day 0 is its first exam (no admission date).
    assert (b["score"]["luss"], b["score"]["source"], b["score_pct"]) == (6, "ai", 33.3)
    assert (b["change_pct"], b["change"], b["review_status"]) == (33.3, 6, "draft")
    assert (b["open_alerts"], b["gas"]["pf"], b["gas"]["paco2"]) == (1, 120, 52.0)
    assert b["days"] == 7 and b["day_zero"] == "first exam"
    # C: nothing recorded.
    assert (c["score"], c["change_pct"], c["review_status"], c["open_alerts"], c["gas"]) == (None, None, None, 0, None)
    assert c["days"] == 4
    # D: one exam of another protocol: normalised to its own maximum, no previous exam, a gas without FiO2.
    assert (d["score"]["luss"], d["score"]["max_luss"], d["score_pct"]) == (12, 36, 33.3)
    assert (d["change_pct"], d["change"], d["gas"]["pf"], d["gas"]["paco2"]) == (None, None, None, 41.0)


def test_partly_read_exam_says_so(seeded: Ward) -> None:
    b2 = seeded.exams["B"][1]
    reading_create(clip=b2.clips.get(zone="L1"), by=seeded.users["clinician"], score=3)
    b = _by_code(ward_rows(study=seeded.study, user=seeded.users["clinician"], now=NOW))["B"]
    assert (b["score"]["luss"], b["score"]["source"], b["score"]["read"], b["score"]["zones"]) == (8, "mixed", 1, 6)


EXPECTED_ASC = {
    "code": ["A", "B", "C", "D"],
    "score": ["B", "D", "A", "C"],  # 33.3 (B before D: ties by code), 33.3, 77.8, none
    "change": ["B", "A", "C", "D"],  # 33.3, 44.5, none, none
    "review": ["B", "D", "A", "C"],  # draft, draft, amended, none
    "alerts": ["C", "D", "B", "A"],  # 0, 0, 1, 2
    "pf": ["B", "A", "C", "D"],  # 120, 200, none, none
    "paco2": ["D", "A", "B", "C"],  # 41, 45, 52, none
    "gas_at": ["A", "D", "B", "C"],
    "days": ["C", "D", "B", "A"],  # 4, 6, 7, 9
}
EXPECTED_DESC = {
    "code": ["D", "C", "B", "A"],
    "score": ["A", "B", "D", "C"],
    "change": ["A", "B", "C", "D"],
    "review": ["A", "B", "D", "C"],
    "alerts": ["A", "B", "C", "D"],
    "pf": ["A", "B", "C", "D"],
    "paco2": ["B", "A", "D", "C"],
    "gas_at": ["B", "D", "A", "C"],
    "days": ["A", "B", "D", "C"],
}


@pytest.mark.parametrize("key", sorted(SORT_KEYS))
def test_sorting_by_each_key_missing_last(seeded: Ward, key: str) -> None:
    rows = ward_rows(study=seeded.study, user=seeded.users["clinician"], now=NOW)
    assert [r["code"] for r in sort_rows(rows, key, "asc")] == EXPECTED_ASC[key]
    assert [r["code"] for r in sort_rows(rows, key, "desc")] == EXPECTED_DESC[key]


def _page_codes(html: str) -> list[str]:
    return re.findall(r'<tr data-patient="\d+" data-code="([^"]+)"', html)


def test_page_sorts_server_side_with_header_links(seeded: Ward) -> None:
    client = signed_in(seeded.users["clinician"])
    url = f"/studies/{seeded.study.pk}/ward/"
    html = client.get(url, {"sort": "score", "dir": "desc"}).content.decode()
    assert _page_codes(html) == EXPECTED_DESC["score"]
    # The sorted column links to the other direction, the others to ascending; aria-sort says the order.
    assert '<th scope="col" aria-sort="descending" data-key="score"' in html
    assert 'href="?sort=score&amp;dir=asc"' in html and 'href="?sort=pf&amp;dir=asc"' in html
    html = client.get(url, {"sort": "pf"}).content.decode()
    assert _page_codes(html) == EXPECTED_ASC["pf"] and 'href="?sort=pf&amp;dir=desc"' in html
    # An unknown key falls back to the code order.
    assert _page_codes(client.get(url, {"sort": "name; drop", "dir": "x"}).content.decode()) == EXPECTED_ASC["code"]
    assert "77.8 %" in html and "AI, not reviewed" in html and "clinician record" in html


def test_researchers_see_codes_and_day_numbers_only(seeded: Ward) -> None:
    html = signed_in(seeded.users["researcher"]).get(f"/studies/{seeded.study.pk}/ward/").content.decode()
    assert _page_codes(html) == ["A", "B", "C", "D"]
    assert "Ann Secret" not in html and "HN-A" not in html and "2026-03" not in html
    row = _by_code(ward_rows(study=seeded.study, user=seeded.users["researcher"], now=NOW))["A"]
    assert row["name"] is None and row["gas"]["label"] == "day 4.5" and row["exam"]["label"] == "day 4.4"
    assert not AuditEvent.objects.filter(action=AuditAction.VIEW_IDENTIFYING, actor=seeded.users["researcher"]).exists()


def test_clinicians_see_names_and_the_view_is_audited(seeded: Ward) -> None:
    html = signed_in(seeded.users["clinician"]).get(f"/studies/{seeded.study.pk}/ward/").content.decode()
    assert "Ann Secret" in html and "2026-03-05 11:00" in html
    event = AuditEvent.objects.get(action=AuditAction.VIEW_IDENTIFYING, actor=seeded.users["clinician"])
    assert event.changes["via"] == "ward list" and event.row_count == 4


def test_outsiders_and_anonymous_get_nothing(seeded: Ward) -> None:
    url = f"/studies/{seeded.study.pk}/ward/"
    assert signed_in(UserFactory(username="stranger")).get(url).status_code == 404
    response = Client().get(url)
    assert response.status_code == 302 and "login" in response["Location"]


def test_study_page_links_the_ward_list(seeded: Ward) -> None:
    html = signed_in(seeded.users["researcher"]).get(f"/studies/{seeded.study.pk}/").content.decode()
    assert f'href="/studies/{seeded.study.pk}/ward/"' in html and 'id="ward-link"' in html


def test_a_bounded_number_of_queries(seeded: Ward, django_assert_max_num_queries: Any) -> None:
    user = seeded.users["clinician"]
    with CaptureQueriesContext(connection) as small:
        ward_rows(study=seeded.study, user=user, now=NOW)
    mv = builders.model_version()
    for i in range(5):  # five more patients, two exams and a gas each
        p = PatientFactory(study=seeded.study, code=f"E{i}")
        _exam(p, 2, dict.fromkeys(CODES, 1), mv)
        _exam(p, 4, dict.fromkeys(CODES, 2), mv)
        BloodGasFactory(patient=p, sampled_at=NOW - dt.timedelta(days=1))
        _alert(p, f"e{i}")
    with django_assert_max_num_queries(len(small.captured_queries)):
        rows = ward_rows(study=seeded.study, user=user, now=NOW)
    assert len(rows) == 9
    assert len(small.captured_queries) <= 12
