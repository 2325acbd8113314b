"""Inviting an unknown e-mail creates the account with a set-password link; password reset pages
in the site's layout (issue 16)."""
from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client

from lusweb.errors import ServiceError
from patients.audit.models import AuditEvent
from patients.studies.invite import member_invite
from patients.studies.models import Membership, Role
from tests.conftest import signed_in
from tests.factories import StudyFactory, UserFactory, members_by_role

pytestmark = pytest.mark.django_db


def _link(message: Any) -> str:
    found = re.search(r"http://testserver(/password/reset/[^/\s]+/[^/\s]+/)", message.body)
    assert found, message.body
    return found.group(1)


def _set_password(link: str, password: str) -> Client:
    client = Client()
    form_page = client.get(link, follow=True)  # Django swaps the token for a session and redirects
    assert form_page.status_code == 200 and "Choose your password" in form_page.content.decode()
    done = client.post(form_page.redirect_chain[-1][0], {"new_password1": password, "new_password2": password})
    assert done["Location"] == "/password/reset/done/"
    return client


def test_inviting_an_unknown_email_creates_the_account_and_emails_a_set_password_link(
        django_capture_on_commit_callbacks: Any) -> None:
    study = StudyFactory(name="Invite ward")
    admin = members_by_role(study, "iv-{role}")[Role.STUDY_ADMIN]
    client = signed_in(admin)
    with django_capture_on_commit_callbacks(execute=True):  # the e-mail leaves once the account is committed
        page = client.post(f"/studies/{study.pk}/members/", {"username": "Ann.Lee@ward.example",
                                                             "role": "clinician"}, follow=True)
    said = page.content.decode()
    assert "Ann.Lee is now Clinician." in said and "a link to choose a password was e-mailed to Ann.Lee@ward.example" in said
    user = get_user_model().objects.get(username="Ann.Lee")
    assert user.email == "Ann.Lee@ward.example" and not user.has_usable_password()
    assert Membership.objects.get(study=study, user=user).role == Role.CLINICIAN
    assert AuditEvent.objects.filter(object_type="user", object_id="Ann.Lee").exists()
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["Ann.Lee@ward.example"]
    assert "Invite ward" in mail.outbox[0].subject and "Your username: Ann.Lee" in mail.outbox[0].body
    link = _link(mail.outbox[0])
    _set_password(link, "a-long-ward-password-7")
    assert Client().post("/login/", {"username": "Ann.Lee", "password": "a-long-ward-password-7"})["Location"] == "/"
    spent = Client().get(link, follow=True).content.decode()
    assert "This link no longer works" in spent  # used once
    # Inviting the same e-mail again finds the account: no second account, no second e-mail.
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/studies/{study.pk}/members/", {"username": "ann.lee@ward.example", "role": "researcher"})
    assert get_user_model().objects.filter(email__iexact="ann.lee@ward.example").count() == 1 and len(mail.outbox) == 1
    assert Membership.objects.get(study=study, user=user).role == Role.RESEARCHER


def test_an_unknown_username_or_a_bad_email_is_refused_with_what_to_do() -> None:
    study = StudyFactory()
    admin = members_by_role(study, "iu-{role}")[Role.STUDY_ADMIN]
    client = signed_in(admin)
    users = get_user_model().objects.count()
    page = client.post(f"/studies/{study.pk}/members/", {"username": "nobody", "role": "clinician"}).content.decode()
    assert "no user named &#x27;nobody&#x27;: enter their e-mail address" in page
    page = client.post(f"/studies/{study.pk}/members/", {"username": "a@b@c", "role": "clinician"}).content.decode()
    assert "is not a valid e-mail address" in page
    # A valid address longer than an account can hold (validate_email allows 320 characters).
    long_address = "a" * 64 + "@" + ".".join(c * 63 for c in "bcd") + ".example"
    page = client.post(f"/studies/{study.pk}/members/", {"username": long_address, "role": "clinician"}
                       ).content.decode()
    assert "Ensure this value has at most 254 characters (it has 264)." in page
    with pytest.raises(ServiceError, match="the e-mail address is 264 characters long; at most 254 are accepted"):
        member_invite(study=study, who=long_address, role=Role.CLINICIAN, by=admin, site_url="http://testserver")
    assert get_user_model().objects.count() == users and mail.outbox == []
    researcher = signed_in(members_by_role(study, "ir-{role}")[Role.RESEARCHER])
    users = get_user_model().objects.count()
    assert researcher.post(f"/studies/{study.pk}/members/", {"username": "x@y.example", "role": "clinician"}
                           ).status_code in (403, 404)
    assert get_user_model().objects.count() == users


def test_password_reset_pages_in_the_site_layout() -> None:
    user = UserFactory(username="forgetful", email="forgetful@ward.example")
    login = Client().get("/login/").content.decode()
    assert 'href="/password/reset/"' in login
    client = Client()
    form = client.get("/password/reset/").content.decode()
    assert 'class="topbar"' in form and "Reset your password" in form
    assert client.post("/password/reset/", {"email": "forgetful@ward.example"})["Location"] == "/password/reset/sent/"
    assert "Check your e-mail" in client.get("/password/reset/sent/").content.decode()
    assert len(mail.outbox) == 1 and mail.outbox[0].subject == "LUSWeb: reset your password"
    _set_password(_link(mail.outbox[0]), "another-long-pass-9")
    user.refresh_from_db()
    assert user.check_password("another-long-pass-9")
    assert "Your password is set" in Client().get("/password/reset/done/").content.decode()
    assert "This link no longer works" in Client().get("/password/reset/MQ/bad-token/").content.decode()


def test_the_api_invites_by_email_as_the_members_page_does(django_capture_on_commit_callbacks: Any) -> None:
    from rest_framework.test import APIClient

    study = StudyFactory(name="API ward")
    members = members_by_role(study, "ia-{role}")
    api = APIClient()
    api.force_authenticate(members[Role.STUDY_ADMIN])
    url = f"/api/v1/studies/{study.pk}/members/"
    with django_capture_on_commit_callbacks(execute=True):
        answer = api.post(url, {"email": "Bo.Chen@ward.example", "role": "researcher"}, format="json")
    assert answer.status_code == 201, answer.content
    assert answer.json() == {"username": "Bo.Chen", "role": "researcher", "account_created": True}
    user = get_user_model().objects.get(username="Bo.Chen")
    assert not user.has_usable_password() and len(mail.outbox) == 1 and mail.outbox[0].to == ["Bo.Chen@ward.example"]
    _set_password(_link(mail.outbox[0]), "another-long-password-9")
    # An existing account, by username: a role change, no e-mail.
    again = api.post(url, {"username": "Bo.Chen", "role": "clinician"}, format="json")
    assert again.status_code == 200 and again.json()["account_created"] is False and len(mail.outbox) == 1
    assert Membership.objects.get(study=study, user=user).role == Role.CLINICIAN
    # Bad input names the problem and creates nothing.
    users = get_user_model().objects.count()
    for body, words in [({"role": "clinician"}, "give either username or email"),
                        ({"username": "x", "email": "x@y.example", "role": "clinician"}, "give either username or email"),
                        ({"email": "not-an-address", "role": "clinician"}, "valid email"),
                        ({"username": "nobody", "role": "clinician"}, "no user named 'nobody'"),
                        ({"email": "a" * 60 + "@" + "b" * 200 + ".example", "role": "clinician"},
                         "no more than 254 characters")]:
        refused = api.post(url, body, format="json")
        assert refused.status_code == 400 and words in refused.content.decode(), (body, refused.content)
    assert get_user_model().objects.count() == users
    # Only a study admin invites.
    api.force_authenticate(members[Role.CLINICIAN])
    assert api.post(url, {"email": "z@ward.example", "role": "clinician"}, format="json").status_code == 403
    assert not get_user_model().objects.filter(email="z@ward.example").exists()
