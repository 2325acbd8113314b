"""A study's DICOM receiving settings (allowed calling AE titles, patient match, zone tag and
pattern): set by study admins through the API and the settings page, checked and audited."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from patients.audit.models import AuditEvent
from patients.studies.models import DEFAULT_ZONE_PATTERN, Role, Study
from tests.factories import StudyFactory, UserFactory, members_by_role

pytestmark = pytest.mark.django_db


@pytest.fixture
def world() -> dict[str, Any]:
    study = StudyFactory(protocol="12-zone")
    return {"study": study, "users": members_by_role(study, "dcm-{role}")}


def test_api_sets_the_receiving_settings_and_audits_them(world: dict[str, Any],
                                                         api_for: Callable[..., APIClient]) -> None:
    study, users = world["study"], world["users"]
    api = api_for(users[Role.STUDY_ADMIN])
    assert api.get(f"/api/v1/studies/{study.pk}/").json()["dicom_zone_pattern"] == DEFAULT_ZONE_PATTERN
    answer = api.patch(f"/api/v1/studies/{study.pk}/", {
        "dicom_calling_aets": [" US01 ", "us-icu 2", "US01"], "dicom_patient_match": "code",
        "dicom_zone_tag": "ImageComments", "dicom_zone_pattern": r"zone\s*([RL]\d)"}, format="json")
    assert answer.status_code == 200, answer.json()
    body = answer.json()
    assert body["dicom_calling_aets"] == ["US01", "us-icu 2"]  # stripped, once each, case kept
    assert (body["dicom_patient_match"], body["dicom_zone_tag"], body["dicom_zone_pattern"]) == \
        ("code", "ImageComments", r"zone\s*([RL]\d)")
    study.refresh_from_db()
    assert study.dicom_calling_aets == ["US01", "us-icu 2"] and study.dicom_zone_tag == "ImageComments"
    event = AuditEvent.objects.filter(object_type="study", action="update").latest("at")
    assert event.changes["dicom_calling_aets"] == {"old": [], "new": ["US01", "us-icu 2"]}
    assert event.changes["dicom_patient_match"] == {"old": "hospital_number", "new": "code"}
    assert event.actor_username == "dcm-study_admin"


@pytest.mark.parametrize("change, code, words", [
    ({"dicom_calling_aets": ["A" * 17]}, "bad_calling_aets", "1 to 16 characters"),
    ({"dicom_calling_aets": [""]}, "bad_calling_aets", "1 to 16 characters"),
    ({"dicom_calling_aets": ["US\\01"]}, "bad_calling_aets", "no backslash"),
    ({"dicom_calling_aets": ["US\x0701"]}, "bad_calling_aets", "control character"),
    ({"dicom_zone_tag": "SeriesDescriptionn"}, "bad_zone_tag", "is not a DICOM keyword"),
    ({"dicom_zone_tag": "ReferencedImageSequence"}, "bad_zone_tag", "holds no text"),
    ({"dicom_zone_pattern": "([RL][1-8]"}, "bad_zone_pattern", "not a regular expression"),
])
def test_api_refuses_bad_receiving_settings(world: dict[str, Any], api_for: Callable[..., APIClient],
                                            change: dict[str, Any], code: str, words: str) -> None:
    study = world["study"]
    answer = api_for(world["users"][Role.STUDY_ADMIN]).patch(f"/api/v1/studies/{study.pk}/", change, format="json")
    assert answer.status_code == 400 and answer.json()["code"] == code and words in answer.json()["error"]
    fresh = Study.objects.get(pk=study.pk)
    assert (fresh.dicom_calling_aets, fresh.dicom_zone_tag, fresh.dicom_zone_pattern) == \
        ([], "SeriesDescription", DEFAULT_ZONE_PATTERN)


def test_an_ae_title_sends_to_one_study_only(world: dict[str, Any], api_for: Callable[..., APIClient]) -> None:
    StudyFactory(name="ICU north", dicom_calling_aets=["US01"])
    study, admin = world["study"], world["users"][Role.STUDY_ADMIN]
    taken = api_for(admin).patch(f"/api/v1/studies/{study.pk}/", {"dicom_calling_aets": ["US02", "US01"]},
                                 format="json")
    assert taken.status_code == 400 and taken.json()["code"] == "calling_aet_taken"
    assert "US01 already sends to study 'ICU north'" in taken.json()["error"]
    assert Study.objects.get(pk=study.pk).dicom_calling_aets == []
    # Creating a study with a taken AE title leaves no study behind.
    admin.user_permissions.add(Permission.objects.get(codename="add_study"))
    created = api_for(admin).post("/api/v1/studies/", {"name": "Ward 9", "protocol": "12-zone",
                                                       "dicom_calling_aets": ["US01"]}, format="json")
    assert created.status_code == 400 and not Study.objects.filter(name="Ward 9").exists()
    made = api_for(admin).post("/api/v1/studies/", {"name": "Ward 9", "protocol": "12-zone",
                                                    "dicom_calling_aets": ["US09"]}, format="json")
    assert made.status_code == 201 and Study.objects.get(name="Ward 9").dicom_calling_aets == ["US09"]


def test_only_study_admins_change_receiving_settings(world: dict[str, Any],
                                                     api_for: Callable[..., APIClient]) -> None:
    study = world["study"]
    for role in (Role.CLINICIAN, Role.RESEARCHER):
        refused = api_for(world["users"][role]).patch(f"/api/v1/studies/{study.pk}/",
                                                      {"dicom_calling_aets": ["US01"]}, format="json")
        assert refused.status_code == 403
    assert Study.objects.get(pk=study.pk).dicom_calling_aets == []


def test_settings_page_sets_the_receiving_settings(world: dict[str, Any], client: Any) -> None:
    study = world["study"]
    client.force_login(world["users"][Role.STUDY_ADMIN])
    page = client.get(f"/studies/{study.pk}/settings/").content.decode()
    assert 'name="dicom_calling_aets"' in page and "AE title <strong>LUSWEB</strong>" in page
    assert "port\n<strong>11112</strong>" in page
    saved = client.post(f"/studies/{study.pk}/settings/", {
        "description": "ICU", "deidentify": "on", "dicom_calling_aets": "US01, US02\nUS03",
        "dicom_patient_match": "hospital_number", "dicom_zone_tag": "SeriesDescription",
        "dicom_zone_pattern": r"([RL][1-6])"})
    assert saved.status_code == 302
    study.refresh_from_db()
    assert study.dicom_calling_aets == ["US01", "US02", "US03"] and study.dicom_zone_pattern == r"([RL][1-6])"
    bad = client.post(f"/studies/{study.pk}/settings/", {
        "description": "ICU", "dicom_calling_aets": "US01", "dicom_patient_match": "hospital_number",
        "dicom_zone_tag": "NoSuchKeyword", "dicom_zone_pattern": r"([RL][1-6])"})
    assert bad.status_code == 200 and "is not a DICOM keyword" in bad.content.decode()
    blank = client.post(f"/studies/{study.pk}/settings/", {
        "description": "ICU", "dicom_calling_aets": "US01", "dicom_patient_match": "hospital_number",
        "dicom_zone_tag": "SeriesDescription", "dicom_zone_pattern": "   "})
    assert blank.status_code == 200 and "1 to 200 characters" in blank.content.decode()
    study.refresh_from_db()
    assert study.dicom_calling_aets == ["US01", "US02", "US03"] and study.dicom_zone_pattern == r"([RL][1-6])"
    # A post without the DICOM fields (an older form) leaves them as they are.
    client.post(f"/studies/{study.pk}/settings/", {"description": "ICU 2", "deidentify": "on"})
    study.refresh_from_db()
    assert study.description == "ICU 2" and study.dicom_calling_aets == ["US01", "US02", "US03"]


def test_settings_page_is_for_study_admins(world: dict[str, Any], client: Any) -> None:
    study = world["study"]
    client.force_login(world["users"][Role.CLINICIAN])
    assert client.post(f"/studies/{study.pk}/settings/", {"dicom_calling_aets": "US01"}).status_code == 403
    assert Study.objects.get(pk=study.pk).dicom_calling_aets == []
    client.force_login(UserFactory())
    assert client.get(f"/studies/{study.pk}/settings/").status_code == 404
