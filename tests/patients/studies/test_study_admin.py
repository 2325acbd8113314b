"""Study administration pages and API: creation, members, roles, archive, settings; their 400s."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from patients.studies.models import Membership, Role, Study
from tests.factories import StudyFactory, UserFactory, members_by_role

pytestmark = pytest.mark.django_db


@pytest.fixture
def world() -> dict[str, Any]:
    study = StudyFactory(protocol="12-zone")
    users = members_by_role(study, "adm-{role}")
    return {"study": study, "users": users}


def test_create_a_study_with_protocol_and_privacy_settings(client: Any) -> None:
    creator = UserFactory(username="creator")
    creator.user_permissions.add(Permission.objects.get(codename="add_study"))
    client.force_login(creator)
    response = client.post("/", {"name": "Ward 7", "protocol": "blue-6", "description": "d", "keep_original": "on"})
    study = Study.objects.get(name="Ward 7")
    assert response.status_code == 302 and response["Location"] == f"/studies/{study.pk}/"
    assert (study.protocol, study.deidentify, study.keep_original) == ("blue-6", False, True)  # unticked box
    assert Membership.objects.get(study=study).role == Role.STUDY_ADMIN
    duplicate = client.post("/", {"name": "Ward 7", "protocol": "blue-6"})
    assert duplicate.status_code == 200 and b"already exists" in duplicate.content


def test_members_page_changes_roles_and_removes_members(world: dict[str, Any], client: Any) -> None:
    study, users = world["study"], world["users"]
    client.force_login(users[Role.STUDY_ADMIN])
    page = client.get(f"/studies/{study.pk}/members/")
    assert page.status_code == 200 and b"Remove" in page.content
    client.post(f"/studies/{study.pk}/members/", {"username": "adm-researcher", "role": Role.CLINICIAN})
    assert Membership.objects.get(study=study, user=users[Role.RESEARCHER]).role == Role.CLINICIAN
    client.post(f"/studies/{study.pk}/members/remove/", {"username": "adm-researcher"})
    assert not Membership.objects.filter(study=study, user=users[Role.RESEARCHER]).exists()
    last = client.post(f"/studies/{study.pk}/members/remove/", {"username": "adm-study_admin"}, follow=True)
    assert b"at least one study admin" in last.content
    client.force_login(users[Role.CLINICIAN])
    assert client.post(f"/studies/{study.pk}/members/remove/", {"username": "adm-study_admin"}).status_code == 403


def test_settings_page_and_archive(world: dict[str, Any], client: Any) -> None:
    study, users = world["study"], world["users"]
    client.force_login(users[Role.CLINICIAN])
    assert client.get(f"/studies/{study.pk}/settings/").status_code == 403
    client.force_login(users[Role.STUDY_ADMIN])
    assert client.get(f"/studies/{study.pk}/settings/").status_code == 200
    client.post(f"/studies/{study.pk}/settings/", {"description": "new words", "keep_original": "on"})
    study.refresh_from_db()
    assert (study.description, study.deidentify, study.keep_original) == ("new words", False, True)
    # Archiving is a confirmation step: the study's name must be typed, else nothing changes.
    page = client.get(f"/studies/{study.pk}/settings/").content.decode()
    assert 'class="card danger-zone"' in page and 'class="danger"' in page and "read-only for everyone" in page
    for typed in ({}, {"confirm_name": "not the name"}):
        refused = client.post(f"/studies/{study.pk}/archive/", {"archived": "1", **typed}, follow=True)
        assert "Not archived: type the study&#x27;s name" in refused.content.decode()
        study.refresh_from_db()
        assert not study.archived
    client.post(f"/studies/{study.pk}/archive/", {"archived": "1", "confirm_name": study.name})
    study.refresh_from_db()
    assert study.archived
    # Archived: read-only for everyone, including writes through the settings page ...
    assert client.post(f"/studies/{study.pk}/settings/", {"description": "x"}).status_code == 403
    # ... but the study admin can unarchive.
    client.post(f"/studies/{study.pk}/archive/", {"archived": "0"})
    study.refresh_from_db()
    assert not study.archived


def test_api_member_role_change_and_removal(world: dict[str, Any], api_for: Callable[..., APIClient]) -> None:
    study, users = world["study"], world["users"]
    api = api_for(users[Role.STUDY_ADMIN])
    url = f"/api/v1/studies/{study.pk}/members/adm-clinician/"
    assert api.patch(url, {"role": "researcher"}, format="json").json() == {"username": "adm-clinician",
                                                                             "role": "researcher"}
    bad = api.patch(url, {"role": "boss"}, format="json")
    assert bad.status_code == 400 and "role" in bad.json()["error"] and "boss" in bad.json()["error"]
    missing = api.patch(f"/api/v1/studies/{study.pk}/members/nobody/", {"role": "researcher"}, format="json")
    assert missing.status_code == 400 and "'nobody' is not a member" in missing.json()["error"]
    assert api.delete(url).status_code == 204
    assert api.delete(url).json()["error"] == "'adm-clinician' is not a member of this study"
    last = api.delete(f"/api/v1/studies/{study.pk}/members/adm-study_admin/")
    assert last.status_code == 400 and last.json()["code"] == "last_admin"
    assert api_for(users[Role.RESEARCHER]).delete(f"/api/v1/studies/{study.pk}/members/adm-study_admin/").status_code == 403


def test_api_archive_and_settings(world: dict[str, Any], api_for: Callable[..., APIClient]) -> None:
    study, users = world["study"], world["users"]
    api = api_for(users[Role.STUDY_ADMIN])
    response = api.patch(f"/api/v1/studies/{study.pk}/", {"deidentify": False, "description": "x"}, format="json")
    assert response.status_code == 200 and response.json()["deidentify"] is False
    assert "secret" not in response.json()  # never leaves the server
    bad = api.post(f"/api/v1/studies/{study.pk}/archive/", {"archived": "perhaps"}, format="json")
    assert bad.status_code == 400 and "archived" in bad.json()["error"]
    assert api.post(f"/api/v1/studies/{study.pk}/archive/", {"archived": True}, format="json").json()["archived"]
    refused = api.patch(f"/api/v1/studies/{study.pk}/", {"description": "y"}, format="json")
    assert refused.status_code == 403 and "archived" in refused.json()["error"]
    assert not api.post(f"/api/v1/studies/{study.pk}/archive/", {"archived": False},
                        format="json").json()["archived"]
    clinician = api_for(users[Role.CLINICIAN])
    assert clinician.post(f"/api/v1/studies/{study.pk}/archive/", {"archived": True}, format="json").status_code == 403
