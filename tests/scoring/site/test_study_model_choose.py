"""A study scores with a model shipped with the code: the default scorer, MCRFNet, Reg-STN or the
cascade (issue 19, item 5). A study admin chooses it (page or API), it is registered and audited,
the study's exams are rescored by the real worker pipeline with it, and the clip viewer shows what
that model gives: its own frame curve, Reg-STN's crops of every frame, no heat map, no findings."""
from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from django.core.exceptions import PermissionDenied

from lusweb.errors import ServiceError
from patients.audit.models import AuditEvent
from patients.imaging.core.phantoms import phantom_cohort_clip, write_dicom
from patients.imaging.ingest import clip_ingest
from patients.readings.selectors import clip_record
from patients.studies.models import Role
from scoring import pipeline, services
from scoring.engine import load_model
from scoring.models import ClipScore, ModelVersion, SeverityPrediction
from scoring.site.selectors import shipped_model_rows
from scoring.site.services import site_training_request, study_model_choose
from scoring.study_model import study_model_id
from tests.conftest import signed_in
from tests.factories import ExamFactory, PatientFactory, StudyFactory, members_by_role

pytestmark = pytest.mark.django_db

REGSTN = "lusweb-regstn112-v2"
N_FRAMES = 12


def _study_with_a_clip(capture: Any) -> tuple[Any, Any, dict[str, Any]]:
    """A study scored with the default weights: one exam, one phantom DICOM clip (R1)."""
    shipped = services.model_version_register(activate=True)
    study = StudyFactory(protocol="blue-6")
    people = members_by_role(study, "ch-{role}")
    exam = ExamFactory(patient=PatientFactory(study=study), protocol="blue-6")
    with capture(execute=False):
        buffer = io.BytesIO()
        write_dicom(phantom_cohort_clip(2, seed=5, n_frames=N_FRAMES, rows=120, columns=96), buffer)
        buffer.seek(0)
        clip = clip_ingest(exam=exam, upload=buffer, zone="R1", by=people[Role.CLINICIAN], filename="R1.dcm").clip
        job = services.scoring_job_request(exam=exam, reason="test", model_version=shipped)
    assert pipeline.scoring_job_execute(job_id=job.pk, worker="w") == "succeeded"
    return study, clip, people


def test_a_study_admin_scores_the_study_with_regstn(django_capture_on_commit_callbacks: Any) -> None:
    study, clip, people = _study_with_a_clip(django_capture_on_commit_callbacks)
    admin = people[Role.STUDY_ADMIN]
    with pytest.raises(PermissionDenied):
        study_model_choose(study=study, version=REGSTN, by=people[Role.CLINICIAN])
    with pytest.raises(ServiceError, match="'resnet-50' is not a model shipped with LUSWeb"):
        study_model_choose(study=study, version="resnet-50", by=admin)

    with django_capture_on_commit_callbacks(execute=False):
        [job] = study_model_choose(study=study, version=REGSTN, by=admin)
    model = ModelVersion.objects.get(version=REGSTN)
    assert model.weights == "reg-stn" and model.study_id is None and model.metadata["arch"] == "reg-stn"
    assert study_model_id(study.pk) == model.pk and job.model_version == model and job.reason == "study-rescore"
    assert AuditEvent.objects.filter(study=study, object_type="study_model",
                                     changes__via="choose", changes__model__new=REGSTN).exists()
    with pytest.raises(ServiceError, match="already the study's model"):
        study_model_choose(study=study, version=REGSTN, by=admin)
    # A site model retrains Lite0 heads: refused, by name, while the study scores with a network.
    with pytest.raises(ServiceError, match=f"study scores with '{REGSTN}' \\(reg-stn\\); choose a Lite0 model"):
        site_training_request(study=study, by=admin)

    # The worker's pipeline scores the exam with Reg-STN: every frame, the crops of every frame.
    assert pipeline.scoring_job_execute(job_id=job.pk, worker="w") == "succeeded"
    score = ClipScore.objects.get(job=job)
    want = load_model("reg-stn").score_clip(clip.load_frames())
    assert score.model_version == model and score.score == want.clip_score and score.aggregator == "uninorm"
    assert np.allclose(score.frame_probs, want.frame_probs, atol=2e-3)  # stored as float16
    assert score.findings == {} and "six_class" not in score.extra
    crops = np.asarray(score.extra["crops"])
    assert crops.shape == (N_FRAMES, 2, 4) and np.allclose(crops, want.localisation, atol=1e-4)
    # It is the AI's reading of the zone now (the clinician's would stay the score of record).
    record = clip_record(clip=clip)
    assert record.ai_model == REGSTN and record.ai_score == want.clip_score
    # The severity model reads the default scorer's features: none from another scorer, never a wrong one.
    assert not SeverityPrediction.objects.filter(job=job).exists()

    # The clip viewer: Reg-STN's curve and crops, no heat map (answered without loading a network).
    client = signed_in(people[Role.CLINICIAN])
    html = client.get(f"/clips/{clip.pk}/viewer/").content.decode()
    data = json.loads(re.search(r'<script id="viewer-data" type="application/json">(.*?)</script>', html, re.S)[1])
    player = data["current"]
    assert player["model_version"] == REGSTN and player["explanation"]["model"] == "network"
    assert np.allclose(np.asarray(player["crops"]), crops)
    assert "Reg-STN (Roy et al. 2020), a network trained end to end" in html
    assert "its learned uninorm (Roy et al. 2020)" in html and '<svg class="crops"' in html
    assert "This study scores with Reg-STN (Roy et al. 2020), chosen by a study admin" in html
    assert "comes from its clip model" not in html
    assert 'class="crops-toggle" checked' in html and 'class="gradcam-toggle" disabled' in html
    refused = client.get(f"/clips/{clip.pk}/gradcam/0.png")
    assert refused.status_code == 503 and "no heat map in LUSWeb" in refused.content.decode()

    # Back to the shipped default: its stored scores return at once, nothing rescored.
    assert study_model_choose(study=study, version="lusweb-lite0f112-hr224-ens-v3", by=admin) == []
    assert clip_record(clip=clip).ai_model == "lusweb-lite0f112-hr224-ens-v3"


def test_the_page_and_the_api_list_the_shipped_models(api_for: Callable[..., Any]) -> None:
    study = StudyFactory(protocol="blue-6")
    people = members_by_role(study, "sh-{role}")
    rows = {r["arch"]: r for r in shipped_model_rows(study=study)}
    assert set(rows) == {"lite0", "mcrfnet", "reg-stn", "cascade"}
    for row in rows.values():  # every one cross-validated on the same folds: 5 folds x seeds 0-2, 42 patients
        assert row["cv"]["n_patients"] == 42 and row["cv"]["seeds"] == [0, 1, 2] and row["cv"]["k"] == 5
        assert 0.2 < row["cv"]["accuracy"] < 0.6
    url = f"/studies/{study.pk}/site-models/"
    page = signed_in(people[Role.RESEARCHER]).get(url).content.decode()
    assert page.count('<tr data-version="lusweb-') >= 4 and "Score this study with it</button>" not in page
    assert f'<tr data-version="{REGSTN}" data-arch="reg-stn">' in page
    admin = signed_in(people[Role.STUDY_ADMIN])
    assert "Score this study with it</button>" in admin.get(url).content.decode()
    unconfirmed = admin.post(f"{url}choose/", {"version": REGSTN}, follow=True).content.decode()
    assert "Tick the box to confirm" in unconfirmed and not ModelVersion.objects.filter(version=REGSTN).exists()
    done = admin.post(f"{url}choose/", {"version": REGSTN, "confirm": "on"}, follow=True).content.decode()
    assert f"The study now scores with {REGSTN}; 0 exams queued for rescoring." in done
    assert 'in use</span>' in done

    api = f"/api/v1/studies/{study.pk}/site-models/"
    listed = api_for(people[Role.RESEARCHER]).get(api).json()
    assert listed["active"]["version"] == REGSTN
    assert {r["version"]: r["active"] for r in listed["shipped"]}[REGSTN] is True
    assert api_for(people[Role.RESEARCHER]).post(f"{api}lusweb-cascade112-v1/choose/").status_code == 403
    chosen = api_for(people[Role.STUDY_ADMIN]).post(f"{api}lusweb-cascade112-v1/choose/")
    assert chosen.status_code == 200 and chosen.json()["action"] == "choose"
    assert chosen.json()["site_models"]["active"]["version"] == "lusweb-cascade112-v1"
    assert api_for(people[Role.STUDY_ADMIN]).post(f"{api}nope/choose/").status_code == 404


def test_an_mcrfnet_score_has_its_own_heat_map_on_every_frame(django_capture_on_commit_callbacks: Any) -> None:
    study, clip, people = _study_with_a_clip(django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=False):
        [job] = study_model_choose(study=study, version="lusweb-mcrfnet112-v1", by=people[Role.STUDY_ADMIN])
    assert pipeline.scoring_job_execute(job_id=job.pk, worker="w") == "succeeded"
    score = ClipScore.objects.get(job=job)
    assert "crops" not in score.extra and score.extra["six_class"]["frame_classes"]  # its six-class head
    client = signed_in(people[Role.CLINICIAN])
    html = client.get(f"/clips/{clip.pk}/viewer/").content.decode()
    assert "MCRFNet (Hu et al. 2021), a network trained end to end" in html and '<svg class="crops"' not in html
    assert 'class="gradcam-toggle" disabled' not in html and "gradient × activation of its last" in html
    last = N_FRAMES - 1
    res = client.get(f"/clips/{clip.pk}/gradcam/{last}.png")  # every frame has a map: the network read them all
    assert res.status_code == 200 and res["Content-Type"] == "image/png" and res["X-Explained-Score"] == str(score.score)
