"""What the exam pages and API say about how far a model's scores can be trusted."""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from lusweb.jsonable import jsonable
from patients.records.models import Exam
from scoring.core.inference.six_class import SIX_CLASS_VALUES, SixClassResult
from scoring.models import ClipScore
from scoring.selectors import exam_scores_payload, model_cv_summary, score_confidence, six_class_of_jobs
from tests.factories import ExamFactory, PatientFactory, StudyFactory
from tests.patients.dashboards import builders


def test_model_cv_summary_reads_the_weights_metadata() -> None:
    meta = {"cv": {"n_patients": 42, "accuracy": {"mean": 0.39912, "sd": 0.01}, "within1": {"mean": 0.78},
                   "spearman": {"mean": 0.3381}, "ece": {"mean": 0.0291}, "brier": {"mean": 0.709},
                   "qwk": {"mean": 0.33}}}
    assert model_cv_summary(meta) == {"accuracy": 0.399, "within1": 0.78, "spearman": 0.338, "ece": 0.029,
                                      "brier": 0.709, "n_patients": 42}
    # Older weights without calibration figures: those keys are simply absent.
    assert model_cv_summary({"cv": {"accuracy": {"mean": 0.4}}}) == {"accuracy": 0.4}
    assert model_cv_summary({}) is None and model_cv_summary(None) is None
    assert model_cv_summary({"cv": "not a dict"}) is None
    assert model_cv_summary({"cv": {"accuracy": {"mean": "x"}}}) is None


def test_confidence_is_the_probability_of_the_given_score() -> None:
    assert score_confidence([0.1, 0.2, 0.3, 0.4], 2) == 0.3
    assert score_confidence([0.1, 0.2], 3) is None and score_confidence(None, 0) is None


# --- the six-class severity of Hu et al. ---------------------------------------------------------

#: Frame classes per zone: R1 0, 0, 1, 2 (4 frames); R2 4, 4 (2 frames); L2 3, 3, 2.5, 0, 0 (5 frames).
FRAMES = {"R1": ["A-line", "A-line", "A&B-line", "B1-line"], "R2": ["consolidation"] * 2,
          "L2": ["B2-line", "B2-line", "B1&B2-line", "A-line", "A-line"]}


def _six_class_exam(mv: Any, frames: dict[str, list[str]], *, legacy: str = "") -> tuple[Exam, int]:
    """An exam whose zones' clips have as many frames as ``frames`` lists classes (L1: three frames
    without a six-class result); ``legacy``: that zone's result stored as older scores kept it."""
    exam = ExamFactory(patient=PatientFactory(study=StudyFactory(protocol="12-zone")))
    clips = {z: builders.fake_clip(exam, z, frame_count=len(c)) for z, c in {**frames, "L1": ["A-line"] * 3}.items()}
    job_id = builders.record_scores(exam, dict.fromkeys(clips, 1), mv=mv, clips=clips).job_id
    builders.store_six_class(job_id, frames)
    if legacy:
        cs = ClipScore.objects.get(job_id=job_id, zone=legacy)
        kept = frames[legacy]
        values = np.array([SIX_CLASS_VALUES[c] for c in kept])
        cs.extra = {"six_class": jsonable(SixClassResult(list(kept), values, float(values.mean())))}
        cs.save(update_fields=["extra"])
    return exam, job_id


@pytest.mark.django_db
def test_the_exam_six_class_is_the_frame_weighted_mean(django_assert_max_num_queries: Any) -> None:
    _, job_id = _six_class_exam(builders.model_version(), FRAMES, legacy="L2")
    assert isinstance(ClipScore.objects.get(job_id=job_id, zone="L2").extra["six_class"], str)
    with django_assert_max_num_queries(2):  # the light values, then the one legacy row's string
        six = six_class_of_jobs([job_id], dominant=True)[job_id]
    # (0 + 0 + 1 + 2) + (4 + 4) + (3 + 3 + 2.5 + 0 + 0) over 11 frames; the mean of the clip means
    # (0.75, 4, 1.7) would be 2.15.
    assert six.mean == pytest.approx(19.5 / 11) and six.frames == 11
    all_frames = [SIX_CLASS_VALUES[c] for z in FRAMES for c in FRAMES[z]]
    assert six.mean == pytest.approx(float(np.mean(all_frames)))
    by_zone = {z.zone: z for z in six.zones}
    assert set(by_zone) == {"R1", "R2", "L2"}  # L1 has no six-class result: not counted as 0
    assert (by_zone["R1"].mean, by_zone["R1"].frames, by_zone["R1"].dominant) == (0.75, 4, "A-line")
    assert (by_zone["R2"].dominant, by_zone["L2"].dominant) == ("consolidation", "B2-line")  # L2: a 2-2 tie
    assert by_zone["L2"].mean == pytest.approx(1.7)
    assert six_class_of_jobs([job_id])[job_id].zones[0].dominant is None  # not asked for
    assert six_class_of_jobs([]) == {}


@pytest.mark.django_db
def test_the_exam_scores_carry_the_six_class_of_the_model_they_show() -> None:
    old = builders.model_version("six-old", active=False)
    exam, _ = _six_class_exam(old, {"R1": ["consolidation"] * 4})
    active = builders.model_version("six-active")
    clips = {c.zone: c for c in exam.clips.all()}
    job_id = builders.record_scores(exam, dict.fromkeys(clips, 0), mv=active, clips=clips).job_id
    builders.store_six_class(job_id, {"R1": ["A-line", "A-line", "B1-line", "B1-line"]})
    six = exam_scores_payload(exam=exam)["six_class"]
    assert (six["model_version"], six["mean"], six["frames"], six["source"]) == ("six-active", 1.0, 4, "ai")
    assert six["scale"] == "six-class scale of Hu et al. 2021"
    assert six["zones"] == [{"zone": "R1", "clip": clips["R1"].pk, "mean": 1.0, "frames": 4, "dominant": "B1-line"}]
