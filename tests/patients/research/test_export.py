"""Cohort export: columns, rows and values per level and format, privacy, streaming, errors."""
from __future__ import annotations

import csv
import datetime as dt
import io
import re
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest
from django.http import StreamingHttpResponse
from rest_framework.test import APIClient

from benchmarks.cohorts import build_cohort
from patients.audit.models import AuditEvent
from patients.imaging.core import deid
from patients.imaging.models import ZoneClip
from patients.records.models import BloodGas, ClinicalInfo, Exam
from patients.research.export.columns import columns as export_columns
from patients.research.export.params import ExportParams
from patients.research.export.stream import stream_csv
from patients.studies.models import Membership, Role
from scoring.models import ClipScore, ExamScore, ModelVersion, ScoringJob, SeverityPrediction
from tests.factories import PatientFactory, StudyFactory, UserFactory, ZoneReadingFactory, ai_readings, members_by_role

pytestmark = pytest.mark.django_db

UTC = dt.UTC
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def _clips(exam: Exam, zones: list[str]) -> dict[str, ZoneClip]:
    return {z: ZoneClip.objects.create(exam=exam, zone=z, file=f"t/{exam.pk}{z}", frames=f"t/{exam.pk}{z}.npz",
                                       sha256=f"{exam.pk:08d}{z}", size_bytes=1, format="dicom", frame_count=1,
                                       rows=1, columns=1) for z in zones}


def _score(exam: Exam, version: ModelVersion, clips: dict[str, ZoneClip], scores: dict[str, int]) -> ScoringJob:
    job = ScoringJob.objects.create(exam=exam, model_version=version, status="succeeded")
    for zone, value in scores.items():
        probs = [0.0, 0.0, 0.0, 0.0]
        probs[value] = 0.7
        probs[(value + 1) % 4] = 0.3
        ClipScore.objects.create(job=job, clip=clips[zone], zone=zone, model_version=version, score=value,
                                 probs=probs, findings={"b_lines": 0.25 * value}, aggregator="max", frame_count=1,
                                 frame_probs_f16=b"\x00" * 8)
    ai_readings(job)
    ExamScore.objects.create(job=job, exam=exam, model_version=version, luss=sum(scores.values()), max_luss=18,
                             mean_score=sum(scores.values()) / len(scores), worst_zone=max(scores, key=scores.__getitem__),
                             worst_score=max(scores.values()), zones_ge2=sum(v >= 2 for v in scores.values()),
                             coverage=len(scores) / 6, missing_zones=[])
    return job


@pytest.fixture
def cohort(settings: Any) -> dict[str, Any]:
    settings.TIME_ZONE = "UTC"
    study = StudyFactory(protocol="blue-6", name="Export ward")
    users = members_by_role(study, "exp-{role}")
    p1 = PatientFactory(study=study, admission_date=dt.date(2026, 3, 1), name="Ada Lovelace", hospital_number="HN-777")
    p2 = PatientFactory(study=study, admission_date=None, name="Bob Builder", hospital_number="HN-888")
    e1 = Exam.objects.create(patient=p1, acquired_at=_at("2026-03-03T12:00:00"), protocol="blue-6")
    e2 = Exam.objects.create(patient=p1, acquired_at=_at("2026-03-05T00:00:00"), protocol="blue-6")
    e3 = Exam.objects.create(patient=p2, acquired_at=_at("2026-04-10T06:00:00"), protocol="blue-6")
    c1 = _clips(e1, ["R1", "R2", "R3", "L1", "L2", "L3"])
    c2 = _clips(e2, ["R1", "R2", "L1"])
    c3 = _clips(e3, ["R1", "L3"])
    old = ModelVersion.objects.create(version="mv-old", weights="old")
    active = ModelVersion.objects.create(version="mv-active", weights="new", is_active=True)
    _score(e1, old, c1, dict.fromkeys(c1, 0))
    job1 = _score(e1, active, c1, {"R1": 1, "R2": 1, "R3": 2, "L1": 0, "L2": 3, "L3": 1})
    _score(e2, active, c2, {"R1": 2, "R2": 2, "L1": 1})
    _score(e3, old, c3, {"R1": 0, "L3": 3})
    SeverityPrediction.objects.create(exam=e1, job=job1, model_version="sev", label="severe",
                                      probs=[0.1, 0.2, 0.5, 0.2], severe_probability=0.7)
    BloodGas.objects.create(patient=p1, sampled_at=_at("2026-03-03T14:00:00"), paco2_mmhg=45.0, pao2_mmhg=60.0,
                            fio2=0.5, ph=7.31)
    BloodGas.objects.create(patient=p1, sampled_at=_at("2026-03-04T18:00:00"), paco2_mmhg=50.0, pao2_mmhg=90.0,
                            fio2=0.3)
    ClinicalInfo.objects.create(patient=p1, recorded_at=_at("2026-03-02T00:00:00"), age=70, diabetes=True, spo2=91.0)
    ClinicalInfo.objects.create(patient=p1, recorded_at=_at("2026-03-04T00:00:00"), age=70, diabetes=True, spo2=95.0)
    first = ZoneReadingFactory(clip=c1["R2"], score=3, comment="first look", rater=users[Role.CLINICIAN])
    ZoneReadingFactory(clip=c1["R2"], score=2, comment="B-lines partly confluent", rater=users[Role.CLINICIAN],
                       created_at=first.created_at + dt.timedelta(seconds=1))
    return {"study": study, "users": users, "patients": (p1, p2), "exams": (e1, e2, e3), "clips": (c1, c2, c3)}


def _csv(response: Any) -> list[dict[str, str]]:
    assert response.status_code == 200, getattr(response, "data", response)
    assert response["Content-Type"].startswith("text/csv")
    assert isinstance(response, StreamingHttpResponse)
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


def _get(api: APIClient, study_id: int, **params: Any) -> Any:
    return api.get(f"/api/v1/studies/{study_id}/export/", params)


def test_zone_long_columns_rows_and_values(cohort: dict[str, Any], api_for: Callable[..., APIClient]) -> None:
    study, (p1, p2) = cohort["study"], cohort["patients"]
    rows = _csv(_get(api_for(cohort["users"][Role.RESEARCHER]), study.pk, level="zone", format="long"))
    params = ExportParams(level="zone", format="long")
    assert list(rows[0]) == [c.name for c in export_columns(study, params)]
    assert len(rows) == 11  # 6 + 3 + 2 recorded zones
    r2 = next(r for r in rows if r["exam_id"] == str(cohort["exams"][0].pk) and r["zone"] == "R2")
    assert r2["patient"] == deid.pseudonym(study.secret, p1.pk)
    assert (r2["exam_number"], r2["day"], r2["day_origin"]) == ("1", "2.5", "admission")
    assert (r2["score"], r2["p1"], r2["p2"], r2["model_version"]) == ("1", "0.7", "0.3", "mv-active")
    # luss is the exam's score of record (R2 read 2 by a clinician over the AI's 1), as the pages show it.
    assert (r2["override_score"], r2["final_score"], r2["luss"], r2["luss_final"]) == ("2", "2", "9", "9")
    assert r2["findings"] == '{"b_lines":0.25}' and r2["aggregator"] == "max"
    assert (r2["severity"], r2["severity_p_severe"], r2["severe_probability"]) == ("severe", "0.5", "0.7")
    assert (r2["gas_hours_from_exam"], r2["paco2_mmhg"], r2["pf_ratio"], r2["ph"]) == ("2.0", "45.0", "120.0", "7.31")
    assert (r2["clinical_days_before_exam"], r2["age"], r2["diabetes"], r2["spo2"]) == ("1.5", "70", "1", "91.0")
    assert r2["fever"] == "" and r2["sex"] == "F"
    r1 = next(r for r in rows if r["exam_id"] == str(cohort["exams"][0].pk) and r["zone"] == "R1")
    assert (r1["override_score"], r1["final_score"]) == ("", "1")
    second = [r for r in rows if r["exam_id"] == str(cohort["exams"][1].pk)]
    assert [r["zone"] for r in second] == ["R1", "R2", "L1"]  # anatomical order
    assert second[0]["exam_number"] == "2" and second[0]["day"] == "4.0"
    assert (second[0]["paco2_mmhg"], second[0]["gas_hours_from_exam"], second[0]["spo2"]) == ("50.0", "-6.0", "95.0")
    other = [r for r in rows if r["patient"] == deid.pseudonym(study.secret, p2.pk)]
    assert len(other) == 2 and other[0]["day_origin"] == "first_exam" and other[0]["day"] == "0.0"
    assert other[0]["model_version"] == "mv-old"  # no active-model result: the newest of any model
    assert other[0]["paco2_mmhg"] == "" and other[1]["score"] == "3"


def test_researcher_export_has_no_identifying_data_or_dates(cohort: dict[str, Any],
                                                            api_for: Callable[..., APIClient]) -> None:
    study = cohort["study"]
    api = api_for(cohort["users"][Role.RESEARCHER])
    for level, fmt in (("zone", "long"), ("exam", "long"), ("exam", "wide"), ("patient", "long")):
        response = _get(api, study.pk, level=level, format=fmt)
        text = b"".join(response.streaming_content).decode()
        assert not DATE.search(text), (level, fmt)
        for p in cohort["patients"]:
            for secret in (p.name, p.hospital_number, p.code):
                assert secret not in text
        header = text.splitlines()[0].split(",")
        assert not {"patient_code", "admission_date", "acquired_at", "name", "hospital_number"} & set(header)


def test_clinicians_also_get_codes_and_dates(cohort: dict[str, Any], api_for: Callable[..., APIClient]) -> None:
    study, (p1, _p2) = cohort["study"], cohort["patients"]
    rows = _csv(_get(api_for(cohort["users"][Role.CLINICIAN]), study.pk, level="exam"))
    first = rows[0]
    assert (first["patient_code"], first["admission_date"]) == (p1.code, "2026-03-01")
    assert first["acquired_at"].startswith("2026-03-03T12:00:00")
    text = ",".join(",".join(r.values()) for r in rows)
    assert p1.name not in text and p1.hospital_number not in text  # never in any export


def test_exam_long_and_wide(cohort: dict[str, Any], api_for: Callable[..., APIClient]) -> None:
    study = cohort["study"]
    api = api_for(cohort["users"][Role.RESEARCHER])
    rows = _csv(_get(api, study.pk, level="exam", format="long"))
    assert len(rows) == 3
    first = rows[0]
    # The headline is the score of record (R2: the clinician's 2 over the AI's 1); the AI's sums beside it.
    assert (first["luss"], first["max_luss"], first["zones_recorded"], first["overrides"], first["luss_final"]) == (
        "9", "18", "6", "1", "9")
    assert (first["luss_ai"], first["luss_model"], first["mean_score"], first["coverage"]) == ("8", "8", "1.5", "1.0")
    assert (first["worst_zone"], first["zones_ge2"], first["model_version"], first["protocol"]) == (
        "L2", "3", "mv-active", "blue-6")
    wide = _csv(_get(api, study.pk, level="exam", format="wide"))
    assert wide != _csv(_get(api, study.pk, level="zone", format="wide"))  # zone/wide: a row per patient x zone
    assert len(wide) == 3
    zone_columns = [c for c in wide[0] if c.startswith("zone_")]
    # Columns name their protocol: a BLUE-6 R3 (PLAPS point) is not a 12-zone R3.
    assert zone_columns[:4] == ["zone_blue-6:R1_score", "zone_blue-6:R1_override", "zone_blue-6:R2_score",
                                "zone_blue-6:R2_override"]
    assert len(zone_columns) == 12
    assert (wide[0]["zone_blue-6:R1_score"], wide[0]["zone_blue-6:R2_score"], wide[0]["zone_blue-6:R2_override"],
            wide[0]["zone_blue-6:L2_score"], wide[0]["record_blue-6:R2"]) == ("1", "1", "2", "3", "2")
    assert (wide[1]["zone_blue-6:R3_score"], wide[1]["zone_blue-6:L1_score"]) == ("", "1")


def test_patient_level(cohort: dict[str, Any], api_for: Callable[..., APIClient]) -> None:
    study, (p1, p2) = cohort["study"], cohort["patients"]
    rows = _csv(_get(api_for(cohort["users"][Role.RESEARCHER]), study.pk, level="patient"))
    assert [r["patient"] for r in rows] == [deid.pseudonym(study.secret, p.pk) for p in (p1, p2)]
    first = rows[0]
    assert (first["exams"], first["clips"], first["first_exam_day"], first["last_exam_day"]) == ("2", "9", "2.5", "4.0")
    assert (first["first_luss"], first["last_luss"], first["max_luss"], first["max_luss_day"]) == ("9", "5", "9", "2.5")
    assert (first["first_luss_final"], first["last_luss_final"]) == ("9", "5")
    assert (first["last_severity"], first["age"]) == ("severe", "70")
    assert rows[1]["exams"] == "1" and rows[1]["max_luss"] == "3"


def test_model_parameter_selects_the_version(cohort: dict[str, Any], api_for: Callable[..., APIClient]) -> None:
    rows = _csv(_get(api_for(cohort["users"][Role.RESEARCHER]), cohort["study"].pk, level="exam", model="mv-old"))
    assert [r["luss_model"] for r in rows] == ["0", "", "3"]  # exam 2 has no mv-old result
    assert [r["model_version"] for r in rows] == ["mv-old", "", "mv-old"]
    assert [r["luss"] for r in rows] == ["9", "5", "3"]  # the score of record, whatever the model


def test_pseudonyms_are_stable_and_keyed_by_the_study_secret(cohort: dict[str, Any]) -> None:
    study, (p1, _p2) = cohort["study"], cohort["patients"]
    other = StudyFactory()
    assert study.secret != other.secret and len(study.secret) == 64
    assert deid.pseudonym(study.secret, p1.pk) == deid.pseudonym(study.secret, p1.pk)
    assert deid.pseudonym(study.secret, p1.pk) != deid.pseudonym(other.secret, p1.pk)
    assert re.fullmatch(r"[0-9a-f]{16}", deid.pseudonym(study.secret, p1.pk))


def test_dictionary(cohort: dict[str, Any], api_for: Callable[..., APIClient]) -> None:
    study = cohort["study"]
    response = _get(api_for(cohort["users"][Role.RESEARCHER]), study.pk, level="zone", dictionary=1)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert list(rows[0]) == ["column", "type", "unit", "meaning"]
    assert [r["column"] for r in rows] == [c.name for c in export_columns(study, ExportParams())]
    units = {r["column"]: r["unit"] for r in rows}
    assert units["paco2_mmhg"] == "mmHg" and units["day"] == "days" and units["p0"] == "probability"
    assert all(r["meaning"] for r in rows)
    assert not AuditEvent.objects.filter(action="export").exists()  # the dictionary holds no data


def test_export_is_audited_with_its_row_count(cohort: dict[str, Any], api_for: Callable[..., APIClient]) -> None:
    user = cohort["users"][Role.RESEARCHER]
    assert len(_csv(_get(api_for(user), cohort["study"].pk, level="zone"))) == 11
    event = AuditEvent.objects.get(action="export")
    assert (event.actor, event.study, event.row_count, event.object_id) == (user, cohort["study"], 11, "zone/long")
    assert event.changes["complete"] is True and event.changes["identifying"] is False


def test_export_page_and_download(cohort: dict[str, Any], client: Any) -> None:
    study = cohort["study"]
    client.force_login(cohort["users"][Role.RESEARCHER])
    page = client.get(f"/studies/{study.pk}/export/")
    assert page.status_code == 200 and b"Download CSV" in page.content
    rows = _csv(client.get(f"/studies/{study.pk}/export/download/", {"level": "exam", "format": "wide"}))
    assert len(rows) == 3
    bad = client.get(f"/studies/{study.pk}/export/download/", {"level": "clip"})
    # Refused in the site's layout, the form again above what was wrong (not a bare text/plain 400).
    assert bad.status_code == 400 and b"level=&#x27;clip&#x27;" in bad.content and b'id="export-form"' in bad.content


@pytest.mark.parametrize("params, message", [
    ({"level": "clip"}, "level='clip': expected one of zone, exam, patient"),
    ({"format": "tall"}, "format='tall': expected one of long, wide"),
    ({"level": "patient", "format": "wide"}, "format=wide needs level=exam or level=zone"),
    ({"window_hours": "abc"}, "window_hours='abc' is not a number"),
    ({"window_hours": "0"}, "window_hours='0': expected more than 0"),
    ({"model": "nope"}, "model='nope' is not a known model version"),
    ({"dictionary": "maybe"}, "dictionary='maybe': expected 1 or 0"),
])
def test_bad_parameters_answer_400(cohort: dict[str, Any], api_for: Callable[..., APIClient],
                                   params: dict[str, str], message: str) -> None:
    response = _get(api_for(cohort["users"][Role.RESEARCHER]), cohort["study"].pk, **params)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert not AuditEvent.objects.filter(action="export").exists()


def test_membership_required(cohort: dict[str, Any], api_for: Callable[..., APIClient]) -> None:
    outsider = UserFactory()
    assert _get(api_for(outsider), cohort["study"].pk).status_code == 404
    assert APIClient().get(f"/api/v1/studies/{cohort['study'].pk}/export/").status_code in (401, 403)


# --- streaming --------------------------------------------------------------------------------------


def _sizeable(study: Any, patients: int) -> None:
    build_cohort(study, patients=patients, exams_per_patient=5, seed=patients)


def test_streams_batch_by_batch(api_for: Callable[..., APIClient], django_assert_max_num_queries: Any) -> None:
    study = StudyFactory(protocol="12-zone")
    user = UserFactory()
    Membership.objects.create(study=study, user=user, role=Role.RESEARCHER)
    _sizeable(study, 20)  # 100 exams x 12 zones = 1200 rows
    response = _get(api_for(user), study.pk, level="zone")
    assert isinstance(response, StreamingHttpResponse)
    chunks = iter(response.streaming_content)
    # The header and the first 500 rows need a fixed handful of queries, not one per row or exam:
    # the rest of the cohort has not been read yet.
    with django_assert_max_num_queries(12):
        header = next(chunks)
        first = next(chunks)
    assert header.startswith(b"study,patient,")
    assert first.count(b"\n") == 500
    rest = b"".join(chunks)
    assert first.count(b"\n") + rest.count(b"\n") == 1200
    assert AuditEvent.objects.get(action="export").row_count == 1200


def test_memory_does_not_grow_with_the_cohort() -> None:
    """Peak memory of a full export stays flat when the cohort doubles (constant-memory streaming)."""
    study = StudyFactory(protocol="12-zone")
    params = ExportParams(level="zone")

    def peak() -> tuple[int, int]:
        tracemalloc.start()
        rows = sum(chunk.count("\n") for chunk in stream_csv(study, params, batch=100)) - 1
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return rows, top

    _sizeable(study, 40)
    rows1, peak1 = peak()
    _sizeable(study, 40)
    rows2, peak2 = peak()
    assert (rows1, rows2) == (2400, 4800)
    assert peak2 < 1.3 * peak1, (peak1, peak2)


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_asgi_gets_an_async_stream(async_client: Any) -> None:
    """Under ASGI (Daphne) a sync iterator would be read whole before sending: the export
    hands the server an async iterator that pulls one batch at a time instead."""
    from asgiref.sync import sync_to_async

    def setup() -> Any:
        study = StudyFactory(protocol="12-zone")
        user = UserFactory()
        Membership.objects.create(study=study, user=user, role=Role.RESEARCHER)
        _sizeable(study, 2)
        return study, user

    study, user = await sync_to_async(setup)()
    await async_client.aforce_login(user)
    response = await async_client.get(f"/studies/{study.pk}/export/download/", {"level": "zone"})
    assert response.status_code == 200 and response.is_async
    chunks = [chunk async for chunk in response.streaming_content]
    assert len(chunks) == 2 and b"".join(chunks).count(b"\n") == 121
    event = await sync_to_async(AuditEvent.objects.get)(action="export")
    assert event.row_count == 120 and event.changes["complete"] is True
    # The test client keeps connections open across requests; the stream's thread must not
    # hold one when the test database is dropped.
    from django.db import connections

    await sync_to_async(connections.close_all, thread_sensitive=True)()
