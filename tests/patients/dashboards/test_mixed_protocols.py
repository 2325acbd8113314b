"""A 12-zone study with BLUE-6 exams for one patient: the explicit protocol choice, the timeline's
rows and axis, the overview's threshold, the correlation's normalised axis and the wide export."""
from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from lusweb.errors import ServiceError
from patients.dashboards.correlation import correlation
from patients.dashboards.overview import study_overview
from patients.dashboards.stats import CorrelationParams
from patients.dashboards.timeline import patient_timeline
from patients.records import services
from patients.studies.models import Role
from patients.studies.protocols import get_protocol
from tests.factories import BloodGasFactory, ExamFactory, PatientFactory, StudyFactory, members_by_role
from tests.patients.dashboards import builders

UTC = dt.UTC
T0 = dt.datetime(2026, 3, 2, 10, tzinfo=UTC)
BLUE = get_protocol("blue-6")
TWELVE = get_protocol("12-zone")


@pytest.fixture
def mixed(db: Any) -> dict[str, Any]:
    """Patient M-001: a BLUE-6 exam (9/18), a 12-zone exam (18/36) and a 12-zone exam with 8 of
    12 zones (13: the same as the full exam on those 8), each with a blood gas an hour later."""
    study = StudyFactory(name="Mixed ward", protocol="12-zone")
    users = members_by_role(study, "{role}-m")
    patient = PatientFactory(study=study, code="M-001", admission_date=dt.date(2026, 3, 1))
    mv = builders.model_version()
    blue = ExamFactory(patient=patient, acquired_at=T0, protocol="blue-6")
    builders.record_scores(blue, dict(zip(BLUE.codes, [1, 2, 3, 1, 1, 1])), mv=mv)  # R3 (PLAPS) = 3
    full = ExamFactory(patient=patient, acquired_at=T0 + dt.timedelta(days=1), protocol="12-zone")
    builders.record_scores(full, dict(zip(TWELVE.codes, [2, 2, 1, 2, 2, 2, 2, 2, 1, 1, 1, 0])), mv=mv)  # 18
    partial = ExamFactory(patient=patient, acquired_at=T0 + dt.timedelta(days=2), protocol="12-zone")
    eight = dict(zip(TWELVE.codes, [2, 2, 1, 2, None, None, 2, 2, 1, 1, None, None]))
    builders.record_scores(partial, {z: v for z, v in eight.items() if v is not None}, mv=mv)  # 13, 8 zones
    for i, exam in enumerate((blue, full, partial)):
        BloodGasFactory(patient=patient, sampled_at=exam.acquired_at + dt.timedelta(hours=1),
                        paco2_mmhg=40.0 + 3 * i, pao2_mmhg=80.0, fio2=0.4)
    return {"study": study, "users": users, "patient": patient, "exams": (blue, full, partial)}


def test_exam_of_another_protocol_needs_an_explicit_choice(mixed: dict[str, Any],
                                                          api_for: Callable[..., APIClient]) -> None:
    patient, clinician = mixed["patient"], mixed["users"]["clinician"]
    with pytest.raises(ServiceError) as refused:
        services.exam_create(patient=patient, acquired_at=T0, by=clinician, protocol="blue-6")
    assert refused.value.code == "protocol_not_default" and "'12-zone'" in refused.value.message
    default = services.exam_create(patient=patient, acquired_at=T0, by=clinician)
    assert default.protocol == "12-zone" and default.other_protocol is False
    chosen = services.exam_create(patient=patient, acquired_at=T0, by=clinician, protocol="blue-6",
                                  other_protocol=True)
    assert chosen.protocol == "blue-6" and chosen.other_protocol is True
    with pytest.raises(ServiceError):
        services.exam_update(exam=default, by=clinician, protocol="8-zone")
    api = api_for(clinician)
    before = patient.exams.count()
    bad = api.post("/api/v1/exams/", {"patient": patient.pk, "acquired_at": "2026-03-09T08:00:00Z",
                                      "protocol": "blue-6"}, format="json")
    assert bad.status_code == 400 and bad.data["code"] == "protocol_not_default"
    assert patient.exams.count() == before  # nothing left behind
    ok = api.post("/api/v1/exams/", {"patient": patient.pk, "acquired_at": "2026-03-09T08:00:00Z",
                                     "protocol": "blue-6", "other_protocol": True}, format="json")
    assert ok.status_code == 201, ok.data
    assert ok.data["other_protocol"] is True and ok.data["zones"] == list(BLUE.codes)
    assert api.get(f"/api/v1/exams/{default.pk}/").data["other_protocol"] is False


def test_patient_page_form_refuses_then_accepts_and_marks(mixed: dict[str, Any]) -> None:
    patient, clinician = mixed["patient"], mixed["users"]["clinician"]
    client = Client()
    client.force_login(clinician)
    before = patient.exams.count()
    form = {"kind": "exam", "acquired_at": "2026-03-09T08:00", "protocol": "blue-6"}
    res = client.post(f"/patients/{patient.pk}/", form, follow=True)
    assert patient.exams.count() == before and "not the study&#x27;s default" in res.content.decode()
    res = client.post(f"/patients/{patient.pk}/", {**form, "other_protocol": "on"})
    assert res.status_code == 302 and patient.exams.count() == before + 1
    page = client.get(f"/patients/{patient.pk}/").content.decode()
    assert page.count("other protocol</span>") == 2  # the fixture's BLUE-6 exam and this one
    exam_page = client.get(f"/exams/{mixed['exams'][0].pk}/").content.decode()
    assert 'id="other-protocol"' in exam_page and "not the study's default protocol (12-zone)" in exam_page
    assert 'id="other-protocol"' not in client.get(f"/exams/{mixed['exams'][1].pk}/").content.decode()


def test_timeline_rows_axis_and_coverage(mixed: dict[str, Any]) -> None:
    data = patient_timeline(patient=mixed["patient"], user=mixed["users"]["clinician"])
    assert data["protocols"] == ["12-zone", "blue-6"] and data["scale"] == "percent"
    rows = {r["key"]: r for r in data["zones"]}
    assert len(rows) == 18
    assert rows["blue-6:R3"]["tick"] == "blue-6:R3 · Right PLAPS point"
    assert rows["12-zone:R3"]["tick"] == "12-zone:R3 · Right lateral upper"
    assert (data["threshold"], data["y_max"]) == (50.0, 100.0)
    assert "50 % of each exam's maximum" in data["threshold_text"]
    blue, full, partial = data["exams"]
    assert (blue["y"], full["y"], partial["y"]) == (50.0, 50.0, round(1300 / 36, 2))
    assert blue["zones"]["blue-6:R3"] == 3 and blue["zones"]["12-zone:R3"] is None
    assert full["zones"]["blue-6:R3"] is None and full["zones"]["12-zone:R3"] == 1
    assert (blue["coverage"], full["coverage"], partial["coverage"]) == ("6/6 zones", "12/12 zones", "8/12 zones")
    # BLUE-6 -> 12-zone: the 6 shared sites (BLUE R3 = 12-zone R4, lateral lower): 9 then
    # R1 2 + R2 2 + R4 2 + L1 2 + L2 2 + L4 1 = 11.
    assert full["change"]["zones"] == 6 and full["change"]["delta"] == 2.0
    # 12 -> 8 zones: the 8 zones scored at both are 13 at both: no change, though 18 -> 13.
    assert partial["change"]["zones"] == 8 and partial["change"]["delta"] == 0.0


def test_timeline_of_one_other_protocol_uses_its_own_maximum(db: Any) -> None:
    study = StudyFactory(protocol="12-zone")
    users = members_by_role(study, "{role}-b")
    patient = PatientFactory(study=study)
    builders.record_scores(ExamFactory(patient=patient, protocol="blue-6"), dict.fromkeys(BLUE.codes, 1),
                           mv=builders.model_version())
    data = patient_timeline(patient=patient, user=users["clinician"])
    assert data["scale"] == "points" and (data["threshold"], data["y_max"]) == (9.0, 18.0)
    assert "(9 of 18, blue-6)" in data["threshold_text"]
    assert [z["key"] for z in data["zones"]] == list(BLUE.codes)
    assert data["zones"][2]["label"] == "Right PLAPS point" and data["exams"][0]["y"] == 6


def test_overview_threshold_and_flags(mixed: dict[str, Any]) -> None:
    data = study_overview(study=mixed["study"], user=mixed["users"]["clinician"])
    assert (data["threshold"], data["threshold_pct"]) == (18, 50.0)
    row = data["patients"][0]
    assert row["luss"] == 13 and row["coverage"] == "8/12 zones" and row["luss_pct"] == round(1300 / 36, 1)
    # Like with like: 0 over the 8 zones scored at both; the fall 18 -> 13 (below the threshold
    # of 18) is the missing zones: no flag, no improvement.
    assert (row["delta"], row["arrow"], row["compared_zones"]) == (0.0, "→", 8)
    assert not [f for f in row["flags"] if f["kind"].startswith("threshold")]
    assert row["above_threshold"] is False and row["threshold_points"] == 18
    assert data["chart"]["luss_pct"] == [row["luss_pct"]] and data["chart"]["coverage"] == ["8/12 zones"]


def test_correlation_normalises_mixed_protocols(mixed: dict[str, Any]) -> None:
    data = correlation(params=CorrelationParams(score="luss"), user=mixed["users"]["clinician"],
                       study=mixed["study"])
    assert data["normalised"] is True and "% of the protocol's maximum" in data["score_label"]
    assert [round(p["score"], 2) for p in data["pairs"]] == [50.0, 50.0, round(1300 / 36, 2)]
    mean = correlation(params=CorrelationParams(score="mean"), user=mixed["users"]["clinician"], study=mixed["study"])
    assert mean["normalised"] is False


def test_wide_export_names_columns_with_their_protocol(mixed: dict[str, Any],
                                                       api_for: Callable[..., APIClient]) -> None:
    api = api_for(mixed["users"][Role.RESEARCHER])
    res = api.get(f"/api/v1/studies/{mixed['study'].pk}/export/", {"level": "exam", "format": "wide"})
    rows = list(csv.DictReader(io.StringIO(b"".join(res.streaming_content).decode())))
    records = [c for c in rows[0] if c.startswith("record_")]
    assert records == [f"record_12-zone:{c}" for c in TWELVE.codes] + [f"record_blue-6:{c}" for c in BLUE.codes]
    blue, full, _ = rows
    assert (blue["record_blue-6:R3"], blue["record_12-zone:R3"]) == ("3", "")
    assert (full["record_blue-6:R3"], full["record_12-zone:R3"]) == ("", "1")
    assert "zone_blue-6:R3_score" in rows[0] and "zone_12-zone:R3_override" in rows[0]
