"""The clip viewer explains the model that produced the clip score (issue 17, item 3): the score
shown follows from the clip probabilities shown, the marked frames (with the clip's summary images)
are what the clip model read and rebuild those probabilities, and the heat map explains that
score on those frames - run on a phantom clip scored by the real pipeline and default weights."""
from __future__ import annotations

import io
import json
import re
from html import unescape
from typing import Any

import numpy as np
import pytest
import torch
from django.test import Client

from patients.imaging.core.phantoms import phantom_cohort_clip, write_dicom
from patients.imaging.ingest import clip_ingest
from patients.imaging.models import ZoneClip
from patients.studies.models import Membership, Role
from scoring import pipeline, runtime, services
from scoring.core.features.featurizer import Featurizer
from scoring.core.features.preprocess import model_input_views
from scoring.core.inference.gradcam import clip_logit, score_members
from scoring.models import ModelVersion
from tests.factories import ExamFactory, UserFactory
from tests.patients.dashboards import builders
from tests.patients.dashboards.conftest import Cohort

pytestmark = pytest.mark.django_db

N_FRAMES = 20


def _scored_clip(capture: Any) -> tuple[ZoneClip, ModelVersion, Client]:
    version = services.model_version_register(activate=True)  # the default weights, with their recipe
    exam = ExamFactory()
    user = UserFactory()
    Membership.objects.create(study=exam.patient.study, user=user, role=Role.CLINICIAN)
    with capture(execute=False):
        buffer = io.BytesIO()
        write_dicom(phantom_cohort_clip(3, seed=11, n_frames=N_FRAMES, rows=96, columns=128), buffer)
        buffer.seek(0)
        clip = clip_ingest(exam=exam, upload=buffer, zone="R1", by=user, filename="R1.dcm").clip
        job = services.scoring_job_request(exam=exam, reason="test", model_version=version)
    assert pipeline.scoring_job_execute(job_id=job.pk, worker="w") == "succeeded"
    client = Client()
    client.force_login(user)
    return clip, version, client


def _page(client: Client, clip: ZoneClip) -> tuple[str, dict[str, Any]]:
    html = client.get(f"/clips/{clip.pk}/viewer/").content.decode()
    data = json.loads(re.search(r'<script id="viewer-data" type="application/json">(.*?)</script>', html, re.S)[1])
    return html, data["current"]


def _shown(html: str) -> tuple[int, list[float], list[int]]:
    """What a reader sees: the AI's clip score, the clip probabilities (%) and the marked frames."""
    score = int(re.search(r"AI's clip score <span class=\"score s(\d)\">\1</span>", html)[1])
    probs = {int(k): float(v) for k, v in re.findall(r'<span class="clip-prob" data-score="(\d)">([\d.]+)</span>', html)}
    marked = re.search(r'class="clip-model"[^>]*data-read-frames="([\d,]*)"', html)[1]
    buttons = [int(i) for i in re.findall(r'class="link-button read-frame" data-frame="(\d+)"', html)]
    assert [int(i) for i in marked.split(",")] == buttons  # the named frames are the marked ones
    return score, [probs[k] for k in range(4)], buttons


def test_the_clip_score_follows_from_what_the_viewer_shows(django_capture_on_commit_callbacks: Any) -> None:
    clip, version, client = _scored_clip(django_capture_on_commit_callbacks)
    html, player = _page(client, clip)
    score, probs, marked = _shown(html)
    # The score shown is the highest of the clip probabilities shown.
    assert probs[score] == max(probs) and sum(probs) == pytest.approx(100, abs=0.3)
    assert player["clip_score"] == score and player["explanation"]["read_frames"] == marked
    # The marked frames are the hires view's 4 evenly spaced frames ...
    assert marked == [0, 6, 13, 19] and player["explanation"]["model"] == "clip-heads"
    # ... and they, with the summary images of the whole clip, rebuild the clip probabilities shown.
    scorer = runtime.get_scorer(version.weights)
    frames = clip.load_frames()
    _x, _g, xh = model_input_views(frames, scorer.cfg, scorer.recipe.hires_size)
    assert xh is not None
    images = np.concatenate([xh[marked], Featurizer.summary_images(xh)])
    with torch.no_grad():
        out = clip_logit(scorer.featurizer, scorer.bundle.clip_members, score_members(scorer.recipe), images,
                         np.arange(len(marked)))
    assert out.target == score and list(100 * out.probs) == pytest.approx(probs, abs=0.051)
    # The curve is labelled as the other model it is.
    text = unescape(re.sub(r"<[^>]+>", "", html))
    assert "frame model, expected score per frame" in text and "a second, independent reader" in text
    assert "The clip score comes from the clip model" in text and "3 summary images of the whole clip" in text
    # The heat map answers for a marked frame, explaining the score shown; not for another frame.
    res = client.get(f"/clips/{clip.pk}/gradcam/{marked[1]}.png")
    assert res.status_code == 200 and res["Content-Type"] == "image/png"
    assert res["X-Explained-Score"] == str(score) and res["X-Read-Frames"] == ",".join(map(str, marked))
    assert 0.0 < float(res["X-Summary-Share"]) < 1.0
    missed = client.get(f"/clips/{clip.pk}/gradcam/{marked[1] + 1}.png")
    assert missed.status_code == 404 and "did not read frame 8" in missed.content.decode()


def test_the_heat_map_explains_the_score_shown(django_capture_on_commit_callbacks: Any) -> None:
    clip, version, client = _scored_clip(django_capture_on_commit_callbacks)
    own = client.get(f"/clips/{clip.pk}/gradcam/0.png")
    first = int(own["X-Explained-Score"])
    # A newer score of the same model shows another score: the map follows the score shown.
    other = (first + 2) % 4
    builders.record_scores(clip.exam, {"R1": other}, mv=version, clips={"R1": clip})
    html, _player = _page(client, clip)
    assert _shown(html)[0] == other
    res = client.get(f"/clips/{clip.pk}/gradcam/0.png")
    assert res.status_code == 200 and res["X-Explained-Score"] == str(other)
    assert res.content != own.content


def test_a_model_without_a_recorded_recipe_marks_no_frames(cohort: Cohort) -> None:
    client = Client()
    client.force_login(cohort.users["clinician"])
    clip = cohort.exams[0].clips.get(zone="R1")
    html, player = _page(client, clip)
    assert player["explanation"]["model"] is None and player["explanation"]["read_frames"] == []
    assert "link-button read-frame" not in html and "is not recorded with its weights" in html
    assert player["explanation"]["probs_pct"] == [round(100 * p, 1) for p in builders.clip_probs(player["clip_score"])]
