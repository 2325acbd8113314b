"""What the scoring pipeline stores beside each clip score, read back by the pages: the six-class
result of Hu et al. as a dict (mean, per-frame classes and values), run on the real default scorer."""
from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest

from patients.imaging.core.phantoms import phantom_cohort_clip, write_dicom
from patients.imaging.ingest import clip_ingest
from patients.studies.models import Membership, Role
from scoring import pipeline, services
from scoring.core.inference.six_class import SIX_CLASS_VALUES
from scoring.models import ClipScore
from scoring.selectors import six_class_of_jobs
from tests.factories import ExamFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_the_pipeline_stores_the_six_class_result_as_a_dict(django_capture_on_commit_callbacks: Any) -> None:
    version = services.model_version_register(activate=True)
    exam = ExamFactory()
    user = UserFactory()
    Membership.objects.create(study=exam.patient.study, user=user, role=Role.CLINICIAN)
    with django_capture_on_commit_callbacks(execute=False):
        for zone, frames, score in (("R1", 3, 0), ("L1", 5, 3)):  # clips of different lengths
            buffer = io.BytesIO()
            write_dicom(phantom_cohort_clip(score, seed=7, n_frames=frames, rows=96, columns=96), buffer)
            buffer.seek(0)
            clip_ingest(exam=exam, upload=buffer, zone=zone, by=user, filename=f"{zone}.dcm")
        job = services.scoring_job_request(exam=exam, reason="test", model_version=version)
    assert pipeline.scoring_job_execute(job_id=job.pk, worker="w") == "succeeded"
    values: list[float] = []
    for cs in ClipScore.objects.filter(job=job).order_by("zone"):
        six = cs.extra["six_class"]
        assert isinstance(six, dict), six  # not the dataclass's repr
        assert len(six["frame_classes"]) == len(six["frame_values"]) == cs.frame_count
        assert [SIX_CLASS_VALUES[c] for c in six["frame_classes"]] == six["frame_values"]
        assert six["mean"] == pytest.approx(np.mean(six["frame_values"]), abs=1e-5)
        values += six["frame_values"]
    exam_six = six_class_of_jobs([job.pk])[job.pk]
    assert (exam_six.frames, exam_six.model_version) == (8, version.version)
    assert exam_six.mean == pytest.approx(np.mean(values), abs=1e-5)  # over all 8 frames of both clips
