"""The study's site-model page: figures for every member, forms and confirmation for study admins."""
from __future__ import annotations

import pytest

from patients.studies.models import Role
from scoring.models import ModelVersion
from scoring.study_model import study_model_id
from tests.conftest import signed_in
from tests.factories import StudyFactory, members_by_role
from tests.patients.dashboards import builders
from tests.scoring.site.test_api import CHAMPION, CURVE, CV

pytestmark = pytest.mark.django_db


def test_site_models_page_shows_the_figures_and_asks_to_confirm() -> None:
    builders.model_version("shipped-1")
    study = StudyFactory(protocol="blue-6")
    people = members_by_role(study, "sv-{role}")
    site = ModelVersion.objects.create(version="site-s-9", weights="s.pt", study=study, metadata={
        "cv": CV, "site": {"champion": "shipped-1", "study_name": study.name, "site_clips": 24, "site_patients": 12,
                           "champion_cv": {**CHAMPION, "in_sample": True, "clips_seen_in_training": 24},
                           "learning_curve": CURVE}})
    url = f"/studies/{study.pk}/site-models/"
    page = signed_in(people[Role.RESEARCHER]).get(url).content.decode()
    assert "Site models of" in page and 'data-active-model>shipped-1<' in page
    assert "The champion was trained on 24 of these clips: its column is in-sample" in page
    assert '<tr data-metric="accuracy"><td>Accuracy (exact score)</td><td class="num">0.412</td><td class="num">0.300</td>' \
        in page
    assert page.count("<td class=\"num\">12</td>") >= 1 and "Train a site model</button>" not in page
    admin = signed_in(people[Role.STUDY_ADMIN])
    assert "Train a site model</button>" in admin.get(url).content.decode()
    unconfirmed = admin.post(f"{url}promote/", {"version": "site-s-9"}, follow=True).content.decode()
    assert "Tick the box to confirm" in unconfirmed and study_model_id(study.pk) != site.pk
    done = admin.post(f"{url}promote/", {"version": "site-s-9", "confirm": "on"}, follow=True).content.decode()
    assert "The study now scores with site-s-9; 0 exams queued for rescoring." in done
    assert study_model_id(study.pk) == site.pk
    refused = admin.post(f"{url}train/", follow=True).content.decode()
    assert "0 patients with signed readings" in refused
    assert admin.post(f"{url}explode/").status_code == 404
    # The models page shows the card's champion-vs-challenger table to the study's members only.
    assert "challenger against the champion" in signed_in(people[Role.CLINICIAN]).get("/models/").content.decode()
    outsider = members_by_role(StudyFactory(), "so-{role}")[Role.CLINICIAN]
    assert "site-s-9" not in signed_in(outsider).get("/models/").content.decode()
