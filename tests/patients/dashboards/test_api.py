"""Dashboard API contract: timeline and correlation, permissions and identifying fields."""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient
from scipy import stats as sps

from patients.records.units import KPA_TO_MMHG
from tests.factories import BloodGasFactory, ExamFactory
from tests.patients.dashboards import builders
from tests.patients.dashboards.conftest import Cohort

pytestmark = pytest.mark.django_db

EXAM_FIELDS = {"id", "acquired_at", "day", "luss", "mean_score", "severity", "severity_probs", "zones", "page_url"}
GAS_FIELDS = {"sampled_at", "day", "paco2_mmhg", "pao2_mmhg", "fio2", "pf_ratio", "ph"}


def test_timeline_contract(cohort: Cohort, api_for: Callable[..., APIClient]) -> None:
    res = api_for(cohort.users["clinician"]).get(f"/api/v1/patients/{cohort.patient.pk}/timeline/")
    assert res.status_code == 200, res.content
    data = res.json()
    assert data["patient"] == cohort.patient.pk
    exams = data["exams"]
    assert [e["id"] for e in exams] == [e.pk for e in cohort.exams]
    assert all(set(e) >= EXAM_FIELDS for e in exams)
    assert [e["luss"] for e in exams] == cohort.luss
    assert [e["day"] for e in exams] == [1, 4, 7]  # admitted 2026-03-01
    assert exams[0]["mean_score"] == pytest.approx(cohort.luss[0] / 11)
    # Zones: every protocol zone in anatomical order, null when missing or not scored.
    assert list(exams[0]["zones"]) == list(cohort.extra["codes"])
    assert exams[0]["zones"] == {**cohort.extra["s1"], "L6": None}
    assert exams[1]["zones"] == cohort.extra["s2"]
    assert set(exams[2]["zones"].values()) == {None}
    # Severity: none yet -> null; else the label and its probabilities.
    assert exams[0]["severity"] is None and exams[0]["severity_probs"] is None
    assert exams[1]["severity"] == "severe" and exams[1]["severity_probs"] == [0.05, 0.15, 0.6, 0.2]
    assert exams[2]["severity"] is None and exams[2]["luss"] is None
    assert exams[0]["page_url"] == f"/exams/{cohort.exams[0].pk}/"
    gases = data["blood_gases"]
    assert len(gases) == 3 and all(set(g) >= GAS_FIELDS for g in gases)
    assert [g["paco2_mmhg"] for g in gases] == [38.0, 40.0, 52.0]
    assert gases[2]["pf_ratio"] == pytest.approx(120.0)
    assert gases[0]["day"] == 1


def _days_since_admission(at: dt.datetime, admission: dt.date) -> float:
    """Independent of patients.chrono: admission 00:00 in the site's time zone."""
    midnight = dt.datetime.combine(admission, dt.time.min, tzinfo=timezone.get_current_timezone())
    return (at - midnight).total_seconds() / 86400


def test_timeline_permissions(cohort: Cohort, api_for: Callable[..., APIClient]) -> None:
    url = f"/api/v1/patients/{cohort.patient.pk}/timeline/"
    assert APIClient().get(url).status_code == 401
    assert api_for(cohort.users["outsider"]).get(url).status_code == 404
    assert api_for(cohort.users["outsider"]).get("/api/v1/patients/999999/timeline/").status_code == 404
    for role in ("study_admin", "clinician", "researcher"):
        res = api_for(cohort.users[role]).get(url)
        assert res.status_code == 200
        body = res.content.decode()
        assert "Alice Secret" not in body and "H-SECRET-1" not in body


def test_study_correlation_contract(cohort: Cohort, api_for: Callable[..., APIClient]) -> None:
    client = api_for(cohort.users["researcher"])
    res = client.get(f"/api/v1/studies/{cohort.study.pk}/correlation/?score=luss&gas=paco2&window_hours=12&unit=mmHg")
    assert res.status_code == 200, res.content
    data = res.json()
    for key in ("n", "pearson_r", "p_value", "ci_low", "ci_high", "spearman_rho", "spearman_p", "slope", "intercept",
                "unit", "pairs"):
        assert key in data
    pairs = data["pairs"]
    # A: exam 1 has two gases 2 h either side (a tie: the earlier, 38, wins); exam 2 pairs with the
    # +5 h gas; exam 3 is not scored. B-001/B-002: the +11 h gas (their +30 h gas is outside the window).
    assert data["n"] == len(pairs) == 4
    assert {frozenset(p) for p in pairs} == {frozenset({"exam", "patient", "patient_code", "score", "gas",
                                                        "gas_sampled_at", "hours_apart", "exam_acquired_at",
                                                        "exam_time", "exam_url", "exam_label", "exam_day", "gas_label",
                                                        "gas_day"})}
    # A researcher gets days since day 0, never a calendar time.
    assert all(p["exam_acquired_at"] is None and p["gas_sampled_at"] is None and p["exam_time"] is None
               for p in pairs)
    by_exam = {p["exam"]: p for p in pairs}
    e1, e2, _ = cohort.exams
    assert by_exam[e1.pk]["gas"] == 38.0 and by_exam[e1.pk]["hours_apart"] == -2.0
    assert by_exam[e2.pk]["gas"] == 52.0 and by_exam[e2.pk]["hours_apart"] == 5.0
    assert by_exam[e1.pk]["patient_code"] == "A-001"
    assert by_exam[e1.pk]["exam_day"] == pytest.approx(_days_since_admission(e1.acquired_at, dt.date(2026, 3, 1)),
                                                       abs=0.01)
    assert by_exam[e1.pk]["exam_label"] == f"day {by_exam[e1.pk]['exam_day']:.1f}"
    assert by_exam[e1.pk]["gas_day"] == pytest.approx(by_exam[e1.pk]["exam_day"] - 2 / 24, abs=0.01)
    assert by_exam[e1.pk]["gas_label"] == f"day {by_exam[e1.pk]['gas_day']:.1f}"
    # B-001 / B-002 have no admission date: their only exam is their day 0.
    assert {p["exam_day"] for p in pairs if p["patient_code"].startswith("B-")} == {0.0}
    clinician = api_for(cohort.users["clinician"]).get(f"/api/v1/studies/{cohort.study.pk}/correlation/").json()
    by_exam_c = {p["exam"]: p for p in clinician["pairs"]}
    assert by_exam_c[e1.pk]["exam_acquired_at"].startswith(timezone.localtime(e1.acquired_at).date().isoformat())
    others = [p for p in pairs if p["patient_code"].startswith("B-")]
    assert sorted(p["gas"] for p in others) == [36.0, 55.0] and {p["hours_apart"] for p in others} == {11.0}
    xs, ys = [p["score"] for p in pairs], [p["gas"] for p in pairs]
    r, pv = sps.pearsonr(xs, ys)
    lr = sps.linregress(xs, ys)
    assert data["pearson_r"] == pytest.approx(r) and data["p_value"] == pytest.approx(pv)
    assert data["slope"] == pytest.approx(lr.slope) and data["intercept"] == pytest.approx(lr.intercept)
    assert data["ci_low"] < data["pearson_r"] < data["ci_high"]
    assert data["unit"] == "mmHg"
    # A narrower window drops the +11 h and +5 h gases: exam 1's tie remains (2 h) -> n = 1.
    narrow = client.get(f"/api/v1/studies/{cohort.study.pk}/correlation/?window_hours=4").json()
    assert narrow["n"] == 1 and narrow["pearson_r"] is None and "at least 3" in narrow["message"]


def test_study_correlation_gives_the_within_patient_figure(cohort: Cohort,
                                                           api_for: Callable[..., APIClient]) -> None:
    client = api_for(cohort.users["researcher"])
    url = f"/api/v1/studies/{cohort.study.pk}/correlation/"
    # Only patient A has two pairs: no within-patient figure yet, and the answer says why.
    rm = client.get(url).json()["repeated"]
    assert (rm["patients"], rm["n"], rm["df"], rm["r"]) == (1, 2, 0, None) and "two or more" in rm["message"]
    # A second scored exam with a gas for B-001 and B-002: 3 patients x 2 pairs, df = 6 - 3 - 1 = 2.
    codes = cohort.extra["codes"]
    for p, (base, paco2) in zip(cohort.others, [(1, 41.0), (2, 50.0)], strict=True):
        e = ExamFactory(patient=p, acquired_at=dt.datetime(2026, 3, 6, 9, tzinfo=dt.UTC))
        builders.record_scores(e, builders.zone_scores(codes, base), mv=cohort.extra["mv"])
        BloodGasFactory(patient=p, sampled_at=e.acquired_at + dt.timedelta(hours=1), paco2_mmhg=paco2)
    data = client.get(url).json()
    rm = data["repeated"]
    assert (rm["patients"], rm["n"], rm["df"]) == (3, 6, 2)
    xs = np.array([p["score"] for p in data["pairs"]])
    ys = np.array([p["gas"] for p in data["pairs"]])
    g = np.array([p["patient"] for p in data["pairs"]])
    xc = xs - np.array([xs[g == k].mean() for k in g])
    yc = ys - np.array([ys[g == k].mean() for k in g])
    assert rm["r"] == pytest.approx(float(np.corrcoef(xc, yc)[0, 1]))
    assert rm["slope"] == pytest.approx(float(xc @ yc / (xc @ xc)))
    t = rm["r"] * np.sqrt(2 / (1 - rm["r"] ** 2))
    assert rm["p_value"] == pytest.approx(2 * sps.t.sf(abs(t), 2))
    assert rm["ci_low"] < rm["r"] < rm["ci_high"]
    # One patient's own page has no such figure (its Pearson r is already within the patient).
    assert client.get(f"/api/v1/patients/{cohort.patient.pk}/correlation/").json()["repeated"] is None
    web = Client()
    web.force_login(cohort.users["researcher"])
    page = web.get(f"/studies/{cohort.study.pk}/correlation/")
    assert page.status_code == 200 and b'id="corr-repeated"' in page.content
    assert f"{rm['r']:.3f}".encode() in page.content


def test_correlation_units_scores_and_patient_scope(cohort: Cohort, api_for: Callable[..., APIClient]) -> None:
    client = api_for(cohort.users["clinician"])
    base = f"/api/v1/studies/{cohort.study.pk}/correlation/"
    mmhg = client.get(base).json()
    kpa = client.get(base + "?unit=kPa").json()
    assert kpa["unit"] == "kPa"
    assert [p["gas"] for p in kpa["pairs"]] == pytest.approx([p["gas"] / KPA_TO_MMHG for p in mmhg["pairs"]])
    assert kpa["pearson_r"] == pytest.approx(mmhg["pearson_r"])
    pf = client.get(base + "?gas=pf&unit=kPa").json()
    assert pf["unit"] == "mmHg"
    assert sorted(p["gas"] for p in pf["pairs"]) == pytest.approx(sorted([92.0 / 0.3, 60.0 / 0.5, 85.0 / 0.21,
                                                                         85.0 / 0.21]))
    sev = client.get(base + "?score=severity").json()
    assert sorted(p["score"] for p in sev["pairs"]) == [0.0, 2.0, 3.0]  # mild, severe, critical; exam 1 has none
    prob = client.get(base + "?score=severe_prob").json()
    assert sorted(p["score"] for p in prob["pairs"]) == pytest.approx([0.1, 0.8, 0.9])
    mine = client.get(f"/api/v1/patients/{cohort.patient.pk}/correlation/").json()
    assert mine["n"] == 2 and {p["patient"] for p in mine["pairs"]} == {cohort.patient.pk}
    assert mine["pearson_r"] is None


def test_correlation_errors_and_permissions(cohort: Cohort, api_for: Callable[..., APIClient]) -> None:
    client = api_for(cohort.users["clinician"])
    bad = client.get(f"/api/v1/studies/{cohort.study.pk}/correlation/?gas=ph")
    assert bad.status_code == 400 and "gas" in bad.json()["error"]
    assert client.get(f"/api/v1/studies/{cohort.study.pk}/correlation/?window_hours=-1").status_code == 400
    for url in (f"/api/v1/studies/{cohort.study.pk}/correlation/",
                f"/api/v1/patients/{cohort.patient.pk}/correlation/"):
        assert APIClient().get(url).status_code == 401
        assert api_for(cohort.users["outsider"]).get(url).status_code == 404
        body = api_for(cohort.users["researcher"]).get(url).content.decode()
        assert "Alice Secret" not in body and "H-SECRET-1" not in body


def test_timeline_queries_do_not_grow_with_exams(cohort: Cohort, api_for: Callable[..., APIClient],
                                                 django_assert_max_num_queries: Any) -> None:
    from tests.factories import ExamFactory
    from tests.patients.dashboards import builders

    client = api_for(cohort.users["clinician"])
    url = f"/api/v1/patients/{cohort.patient.pk}/timeline/"
    client.get(url)
    for day in range(10, 20):
        exam = ExamFactory(patient=cohort.patient)
        builders.record_scores(exam, builders.zone_scores(cohort.extra["codes"], day % 4), mv=cohort.extra["mv"],
                               severity="moderate")
    with django_assert_max_num_queries(12):
        res = client.get(url)
    assert len(res.json()["exams"]) == 13
    json.dumps(res.json())
