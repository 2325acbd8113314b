"""The AI's six-class severity of Hu et al. where the site shows it: the exam page's card (exam
value, per zone mean and dominant class, labelled as the AI's with its model), the exam API, and
the correlation with the six-class score chosen (checked against scipy on a constructed cohort)."""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import scipy.stats as sps
from rest_framework.test import APIClient

from patients.readings.services import blind_read_start
from patients.studies.models import Role, Study
from scoring.core.inference.six_class import SIX_CLASS_VALUES
from tests.conftest import signed_in
from tests.factories import BloodGasFactory, ExamFactory, PatientFactory, StudyFactory, members_by_role
from tests.patients.dashboards import builders
from tests.patients.readings.ward import Ward

pytestmark = pytest.mark.django_db

LABEL = "AI, six-class scale of Hu et al. 2021, model test-model-1"
#: The ward's clips have 4 frames each: R1 0, 0, 4, 4 (mean 2, consolidation on a tie), L5 3 x 3 and 2.5.
FRAMES = {"R1": ["A-line", "A-line", "consolidation", "consolidation"],
          "L5": ["B2-line", "B2-line", "B2-line", "B1&B2-line"]}


def _text(html: str, element_id: str) -> str:
    start = html.index(f'id="{element_id}"')
    end = html.index("</span>", start)
    return re.sub(r"<[^>]+>", "", html[html.index(">", start) + 1:end]).strip()


def _six_class_ward(ward: Ward) -> float:
    """Store FRAMES on the ward's AI result; the exam value expected (8 frames, no other zone has one)."""
    builders.store_six_class(ward.exam.exam_scores.get().job_id, FRAMES)
    return float(np.mean([SIX_CLASS_VALUES[c] for classes in FRAMES.values() for c in classes]))


def test_the_exam_page_shows_the_ais_six_class_severity_with_its_label(ward: Ward) -> None:
    expected = _six_class_ward(ward)
    assert expected == pytest.approx(19.5 / 8)
    for user in (ward.clinician, ward.researcher):
        html = signed_in(user).get(f"/exams/{ward.exam.pk}/").content.decode()
        card = html[html.index('id="six-class"'):html.index("</section>", html.index('id="six-class"'))]
        assert _text(card, "six-class-mean") == f"{expected:.2f}/4" == "2.44/4"
        assert re.sub(r"<[^>]+>", "", card[card.index('id="six-class-label"'):]).count(LABEL) == 1
        assert "all 8 frames of the exam's 2 scored clips" in card
        r1 = card[card.index('data-zone="R1"'):]
        r1 = r1[: r1.index("</tr>")]
        assert ">2.00<" in r1 and ">consolidation<" in r1 and ">4<" in r1  # mean, dominant (a tie), frames
        l5 = card[card.index('data-zone="L5"'):]
        assert ">2.88<" in l5[: l5.index("</tr>")] and ">B2-line<" in l5[: l5.index("</tr>")]
        assert 'data-zone="R2"' not in card  # no six-class result stored for it


def test_the_exam_api_serves_the_six_class_value_with_its_model(ward: Ward,
                                                                api_for: Callable[..., APIClient]) -> None:
    expected = _six_class_ward(ward)
    six = api_for(ward.researcher).get(f"/api/v1/exams/{ward.exam.pk}/").json()["scores"]["six_class"]
    assert six["mean"] == pytest.approx(expected, abs=1e-4) and six["model_version"] == "test-model-1"
    assert (six["frames"], six["source"], [z["zone"] for z in six["zones"]]) == (8, "ai", ["R1", "L5"])
    # A blind reader sees none of the AI's results, this one included.
    second = ward.users["second"]
    blind_read_start(exam=ward.exam, by=second)
    assert api_for(second).get(f"/api/v1/exams/{ward.exam.pk}/").json()["scores"]["six_class"] is None
    assert 'id="six-class"' not in signed_in(second).get(f"/exams/{ward.exam.pk}/").content.decode()


def test_no_six_class_card_without_a_stored_result(ward: Ward) -> None:
    html = signed_in(ward.clinician).get(f"/exams/{ward.exam.pk}/").content.decode()
    assert 'id="six-class"' not in html


# --- correlation -----------------------------------------------------------------------------

#: Per patient: frame classes of R1 (3 frames) and R2 (1 frame), the zones' AI scores, PaCO2.
COHORT = [
    (["A-line", "A-line", "A&B-line"], ["A-line"], {"R1": 3, "R2": 3}, 38.0),
    (["B1-line", "B1-line", "A&B-line"], ["B1-line"], {"R1": 0, "R2": 1}, 44.0),
    (["B2-line", "B1&B2-line", "B2-line"], ["consolidation"], {"R1": 2, "R2": 0}, 51.0),
    (["consolidation"] * 3, ["B2-line"], {"R1": 1, "R2": 1}, 58.0),
    (["A&B-line", "B1-line", "A-line"], ["B1&B2-line"], {"R1": 3, "R2": 2}, 41.0),
]


@pytest.fixture
def six_cohort(db: Any) -> dict[str, Any]:
    return build_six_cohort()


def build_six_cohort() -> dict[str, Any]:
    """Five patients with one 12-zone exam each (R1: 3 frames, R2: 1), its six-class result and a
    blood gas 1 h after; an older, inactive model's result of the first exam with other values.
    Members ``six-<role>``; ``six`` and ``luss`` are each exam's expected values, in COHORT order."""
    study = StudyFactory(name="Six ward", protocol="12-zone")
    users = members_by_role(study, "six-{role}")
    old, mv = builders.model_version("six-old", active=False), builders.model_version()
    six, luss, exams = [], [], []
    for i, (r1, r2, scores, paco2) in enumerate(COHORT):
        exam = ExamFactory(patient=PatientFactory(study=study, code=f"S-{i}"),
                           acquired_at=dt.datetime(2026, 3, 2 + i, 9, tzinfo=dt.UTC))
        clips = {"R1": builders.fake_clip(exam, "R1", frame_count=3), "R2": builders.fake_clip(exam, "R2", frame_count=1)}
        if i == 0:
            stale = builders.record_scores(exam, scores, mv=old, clips=clips)
            builders.store_six_class(stale.job_id, {"R1": ["consolidation"] * 3, "R2": ["consolidation"]})
        job_id = builders.record_scores(exam, scores, mv=mv, clips=clips).job_id
        builders.store_six_class(job_id, {"R1": r1, "R2": r2})
        BloodGasFactory(patient=exam.patient, sampled_at=exam.acquired_at + dt.timedelta(hours=1), paco2_mmhg=paco2)
        exams.append(exam)
        six.append(float(np.mean([SIX_CLASS_VALUES[c] for c in r1 + r2])))
        luss.append(sum(scores.values()))
    return {"study": study, "users": users, "six": six, "luss": luss, "paco2": [row[3] for row in COHORT],
            "exams": exams}


def test_the_correlation_with_the_six_class_score_uses_its_values(six_cohort: dict[str, Any],
                                                                  api_for: Callable[..., APIClient]) -> None:
    study: Study = six_cohort["study"]
    api = api_for(six_cohort["users"][Role.RESEARCHER])
    data = api.get(f"/api/v1/studies/{study.pk}/correlation/?score=six_class&gas=paco2").json()
    assert data["n"] == 5 and data["model_versions"] == ["test-model-1"]
    # Stored clip means are rounded to 5 decimals (1/3 is 0.33333): exact to 1e-5.
    assert sorted(p["score"] for p in data["pairs"]) == pytest.approx(sorted(six_cohort["six"]), abs=1e-5)
    r, p = sps.pearsonr(six_cohort["six"], six_cohort["paco2"])
    rho, _ = sps.spearmanr(six_cohort["six"], six_cohort["paco2"])
    assert data["pearson_r"] == pytest.approx(r, abs=1e-5) and data["p_value"] == pytest.approx(p, abs=1e-5)
    assert data["spearman_rho"] == pytest.approx(rho)
    slope = sps.linregress(six_cohort["six"], six_cohort["paco2"]).slope
    assert data["slope"] == pytest.approx(slope, abs=1e-4)
    assert data["score_label"] == f"Six-class severity, 0-4 ({LABEL})"
    assert data["score_source"] == LABEL
    # The record's global score is another figure: the switch chooses what is correlated.
    record = api.get(f"/api/v1/studies/{study.pk}/correlation/?gas=paco2").json()
    assert record["pearson_r"] == pytest.approx(sps.pearsonr(six_cohort["luss"], six_cohort["paco2"])[0])
    assert abs(record["pearson_r"] - data["pearson_r"]) > 0.3
    assert (record["score_source"], record["model_versions"]) == ("score of record", [])


def test_the_correlation_page_offers_the_six_class_score_and_names_its_source(six_cohort: dict[str, Any]) -> None:
    client = signed_in(six_cohort["users"][Role.CLINICIAN])
    html = client.get(f"/studies/{six_cohort['study'].pk}/correlation/?score=six_class").content.decode()
    assert '<option value="six_class" selected>AI six-class severity (Hu et al. 2021), 0-4</option>' in html
    assert f"<h1>Six-class severity, 0-4 ({LABEL}) vs PaCO₂ (mmHg)" in html
    hint = html[html.index('id="score-source"'):]
    assert LABEL in hint[: hint.index("</p>")] and "never the score of record" in hint[: hint.index("</p>")]
    r = sps.pearsonr(six_cohort["six"], six_cohort["paco2"])[0]
    assert f"Pearson r = <strong>{r:.3f}</strong>" in html
    default = client.get(f"/studies/{six_cohort['study'].pk}/correlation/").content.decode()
    assert "Scores are scores of record" in default and '<option value="six_class">' in default
