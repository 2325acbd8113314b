"""The site-model API contract: train (202 / 400 with the reason), list with the CV figures, promote
and roll back (study admins), and nothing for people outside the study."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from patients.studies.models import Role
from scoring.models import ModelVersion
from scoring.study_model import study_model_id
from tests.factories import StudyFactory, UserFactory, members_by_role
from tests.patients.dashboards import builders
from tests.scoring.site.test_services import _signed_patients

pytestmark = pytest.mark.django_db

CV = {"n_patients": 12, "n_clips": 24, "accuracy": {"mean": 0.41234}, "within1": {"mean": 0.8},
      "spearman_expected": {"mean": 0.35}, "spearman": {"mean": 0.3}, "qwk": {"mean": 0.31}, "ece": {"mean": 0.05}}
CHAMPION = {**CV, "accuracy": {"mean": 0.3}, "in_sample": False, "clips_seen_in_training": 0}
CURVE = [{"fraction": f, "patients": p, "accuracy": {"mean": a}} for f, p, a in
         ((0.25, 3, 0.3), (0.5, 6, 0.35), (0.75, 9, 0.38), (1.0, 12, 0.41))]


def test_training_request_and_refusal(api_for: Callable[..., Any]) -> None:
    builders.model_version("shipped-1")
    study = StudyFactory(protocol="blue-6")
    people = members_by_role(study, "ta-{role}")
    url = f"/api/v1/studies/{study.pk}/site-models/"
    admin = api_for(people[Role.STUDY_ADMIN])
    refused = admin.post(url, {"include_shipped": False}, format="json")
    assert refused.status_code == 400
    assert refused.json()["error"].startswith("0 patients with signed readings (0 clips); a site model needs at least 10")
    _signed_patients(study, 10, people[Role.CLINICIAN])
    assert api_for(people[Role.CLINICIAN]).post(url, {}, format="json").status_code == 403
    assert api_for(UserFactory()).post(url, {}, format="json").status_code == 404
    accepted = admin.post(url, {"include_shipped": False}, format="json")
    assert accepted.status_code == 202, accepted.content
    body = accepted.json()
    assert body["status"] == "pending" and body["champion"] == "shipped-1" and isinstance(body["job"], int)
    assert admin.post(url, {}, format="json").status_code == 409


def test_list_promote_and_rollback(api_for: Callable[..., Any]) -> None:
    builders.model_version("shipped-1")
    study = StudyFactory(protocol="blue-6")
    people = members_by_role(study, "lp-{role}")
    ModelVersion.objects.create(version="site-s-1", weights="site-s-1.pt", study=study, metadata={
        "cv": CV, "site": {"champion": "shipped-1", "champion_cv": CHAMPION, "learning_curve": CURVE,
                           "include_shipped": False, "trained_by": "lp-study_admin"}})
    other = StudyFactory()
    ModelVersion.objects.create(version="site-other", weights="o.pt", study=other)
    url = f"/api/v1/studies/{study.pk}/site-models/"
    listed = api_for(people[Role.RESEARCHER]).get(url).json()
    assert listed["active"]["version"] == "shipped-1" and listed["active"]["site_model"] is False
    [candidate] = listed["candidates"]
    assert candidate["version"] == "site-s-1" and candidate["active"] is False
    assert candidate["cv"] == {"accuracy": 0.4123, "within1": 0.8, "spearman": 0.35, "qwk": 0.31, "ece": 0.05,
                               "n_patients": 12, "n_clips": 24}
    assert candidate["champion"] == "shipped-1" and candidate["champion_cv"]["accuracy"] == 0.3
    assert candidate["champion_cv"]["in_sample"] is False
    assert [p["patients"] for p in candidate["learning_curve"]] == [3, 6, 9, 12]
    # The models list shows the shipped model and this study's site model, not another study's.
    versions = {m["version"] for m in api_for(people[Role.RESEARCHER]).get("/api/v1/models/").json()}
    assert versions == {"shipped-1", "site-s-1"}

    clinician = api_for(people[Role.CLINICIAN])
    assert clinician.post(f"{url}site-s-1/promote/").status_code == 403
    admin = api_for(people[Role.STUDY_ADMIN])
    assert admin.post(f"{url}site-other/promote/").status_code == 404
    promoted = admin.post(f"{url}site-s-1/promote/")
    assert promoted.status_code == 200, promoted.content
    assert promoted.json()["site_models"]["active"]["version"] == "site-s-1"
    assert study_model_id(study.pk) == ModelVersion.objects.get(version="site-s-1").pk
    assert admin.post(f"{url}site-s-1/promote/").status_code == 409
    back = admin.post(f"{url}shipped-1/rollback/")
    assert back.status_code == 200 and back.json()["site_models"]["active"]["version"] == "shipped-1"
