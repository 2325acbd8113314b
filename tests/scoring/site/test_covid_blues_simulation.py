"""Real-data simulation of site training (issue 17): COVID-BLUES imported with the expert's scores as
a clinician's signed readings, the study scored by the shipped model, a site model trained through
the API by a real worker, its CV checked against ``lus_train`` on the same folds, promoted (the
study is rescored) and rolled back (the shipped model's scores come back).

The figures (CV, the champion's on the same folds, the learning curve) are written to
``$LUSWEB_TEST_OUTPUT/site-model-covid-blues.json`` for the model card and the closing note.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import torch
from django.core.management import call_command

from patients.readings.models import ReadingSource, ZoneReading
from patients.studies.models import Study
from scoring.core.inference.scorer import load_scorer
from scoring.models import JobStatus, ModelVersion, ScoringJob, SiteTraining
from scoring.services import study_rescore
from scoring.site.selectors import labelled_clips
from tests.conftest import require
from tests.factories import UserFactory
from tests.worker import Worker, worker_env_fixture

# Import, scoring of 49 exams, training, lus_train and rescoring: about 12 minutes on 2 quiet cores.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.timeout(3000)]

worker_env = worker_env_fixture


def _wait(done: Callable[[], bool], timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done():
            return
        time.sleep(1.0)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; see {log}")


def _jobs_done(study: Study) -> bool:
    jobs = ScoringJob.objects.filter(exam__patient__study=study)
    failed = list(jobs.filter(status=JobStatus.FAILED).values_list("error", flat=True)[:3])
    assert not failed, failed
    return jobs.exists() and not jobs.exclude(status__in=[JobStatus.SUCCEEDED, JobStatus.CANCELLED]).exists()


def _ai_readings(study: Study) -> dict[int, tuple[int | None, str]]:
    """clip id -> the AI's newest reading (score, rater) of every clip of the study."""
    out: dict[int, tuple[int | None, str]] = {}
    for clip_id, score, rater in (ZoneReading.objects.filter(clip__exam__patient__study=study, source=ReadingSource.AI)
                                  .order_by("-created_at", "-pk").values_list("clip_id", "score", "rater_name")):
        out.setdefault(clip_id, (score, rater))
    return out


def test_covid_blues_site_model_through_the_api_and_a_worker(shared_data: Path, worker_env: Callable[..., Worker],
                                                               api_for: Callable[..., Any]) -> None:
    root = shared_data / "covid-blues"
    require(root.is_dir(), f"COVID-BLUES not found at {root}")
    admin, _expert = UserFactory(username="cb-admin"), UserFactory(username="cb-expert")
    call_command("import_covid_blues", str(root), "--user", "cb-admin", "--signed-by", "cb-expert", stdout=StringIO())
    study = Study.objects.get(name="COVID-BLUES")
    clips = labelled_clips(study=study)
    assert len(clips) == 235 and len({c.patient for c in clips}) == 42

    worker = worker_env()
    study_rescore(study=study, by=admin)  # the shipped model's scores: what rollback must restore
    _wait(lambda: _jobs_done(study), 1800, "the shipped model to score the study", worker.log)
    shipped = ModelVersion.objects.get(is_active=True)
    before = _ai_readings(study)
    assert len(before) == 235 and {rater for _s, rater in before.values()} == {f"model:{shipped.version}"}

    api = api_for(admin)
    url = f"/api/v1/studies/{study.pk}/site-models/"
    answer = api.post(url, {"include_shipped": False}, format="json")
    assert answer.status_code == 202, answer.content
    job = answer.json()["job"]
    _wait(lambda: SiteTraining.objects.get(pk=job).status in (JobStatus.SUCCEEDED, JobStatus.FAILED), 2400,
          "the site training", worker.log)
    training = SiteTraining.objects.get(pk=job)
    assert training.status == JobStatus.SUCCEEDED, training.error
    [candidate] = api.get(url).json()["candidates"]
    assert candidate["cv"]["n_patients"] == 42 and candidate["cv"]["n_clips"] == 235
    # The shipped model was trained on these very clips: its figures here are in-sample, and say so.
    assert candidate["champion_cv"]["in_sample"] is True and candidate["champion_cv"]["clips_seen_in_training"] == 235
    assert [p["patients"] for p in candidate["learning_curve"]] == [10, 21, 32, 42]

    # lus_train's CV on the same clips and folds (its defaults: seeds 0,1,2, 5 folds).
    out = Path(tempfile.mkdtemp(prefix="lus-train-")) / "cb.pt"
    call_command("lus_train", "--out", str(out), "--data", str(shared_data))
    command_cv = torch.load(str(out), map_location="cpu", weights_only=True)["meta"]["cv"]
    site_meta = ModelVersion.objects.get(version=candidate["version"]).metadata
    for key in ("accuracy", "within1", "spearman_expected", "qwk"):
        assert abs(site_meta["cv"][key]["mean"] - command_cv[key]["mean"]) <= 0.01, key
    # scoring.engine.load_scorer(version) loads the site model by its version.
    assert load_scorer(candidate["version"], cached=False).version == candidate["version"]

    promoted = api.post(f"{url}{candidate['version']}/promote/")
    assert promoted.status_code == 200, promoted.content
    assert len(promoted.json()["rescoring_jobs"]) == ScoringJob.objects.filter(
        exam__patient__study=study, model_version=shipped).values("exam").distinct().count()
    _wait(lambda: _jobs_done(study), 1800, "the study's rescoring with the site model", worker.log)
    after = _ai_readings(study)
    assert {rater for _s, rater in after.values()} == {f"model:{candidate['version']}"}

    assert api.post(f"{url}{shipped.version}/rollback/").json()["rescoring_jobs"] == []
    assert _ai_readings(study) == before  # the shipped model's readings, restored without rescoring

    report = {"cv": candidate["cv"], "champion_cv": candidate["champion_cv"],
              "learning_curve": candidate["learning_curve"],
              "command_cv": {k: command_cv[k]["mean"] for k in ("accuracy", "within1", "spearman_expected", "qwk")},
              "changed_ai_scores": sum(1 for c, (s, _r) in after.items() if s != before[c][0])}
    folder = Path(os.environ.get("LUSWEB_TEST_OUTPUT", tempfile.gettempdir()))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "site-model-covid-blues.json").write_text(json.dumps(report, indent=1, default=str))
