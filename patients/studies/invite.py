"""Inviting someone into a study by username or e-mail.

An e-mail that no account has creates the account (no usable password) and e-mails it a
set-password link: Django's password-reset confirmation page with a
:class:`~django.contrib.auth.tokens.PasswordResetTokenGenerator` token, valid for
``PASSWORD_RESET_TIMEOUT`` seconds and spent once the password is set. The demo's e-mail backend
prints the message on the console (``LUSWEB_EMAIL_BACKEND``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from lusweb.errors import ServiceError
from patients.audit.models import AuditAction
from patients.audit.services import audit_record
from patients.studies import permissions
from patients.studies.models import Membership, Study
from patients.studies.services import membership_set


@dataclass(frozen=True)
class Invitation:
    membership: Membership
    created: bool  # a new member of the study (else a role change)
    account_created: bool  # a new account, e-mailed a set-password link


def set_password_path(user: Any) -> str:
    """The path of the user's one-time set-password page (the password-reset confirmation)."""
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    return reverse("password_reset_confirm", args=[uid, default_token_generator.make_token(user)])


def _free_username(email: str) -> str:
    """A username from the e-mail's local part, numbered when taken (``ann.lee``, ``ann.lee2``)."""
    base = re.sub(r"[^\w.@+-]", "", email.split("@", 1)[0])[:140] or "user"
    users = get_user_model().objects
    name, n = base, 1
    while users.filter(username__iexact=name).exists():
        n += 1
        name = f"{base}{n}"
    return name


#: Longest e-mail address an account can hold (Django's User.email; RFC 5321 path limit).
EMAIL_MAX = 254


def _account_for(who: str, by: Any, study: Study) -> tuple[Any, bool]:
    """(the user named ``who`` - a username or an account's e-mail -, False), or a new account for
    an unknown e-mail (True). An unknown username is refused, naming what to enter instead."""
    users = get_user_model().objects
    user = users.filter(username=who).first() or (users.filter(email__iexact=who).first() if "@" in who else None)
    if user is not None:
        return user, False
    if "@" not in who:
        raise ServiceError(f"no user named {who!r}: enter their e-mail address to create their account and "
                           "send them a set-password link", code="unknown_user")
    try:
        validate_email(who)
    except ValidationError:
        raise ServiceError(f"{who!r} is not a valid e-mail address", code="bad_email") from None
    limit = get_user_model()._meta.get_field("email").max_length or EMAIL_MAX
    if len(who) > limit:
        # validate_email accepts up to 320 characters; the account's column holds fewer (RFC 5321's
        # 254 for a forward path), so a longer address would fail in the database instead.
        raise ServiceError(f"the e-mail address is {len(who)} characters long; at most {limit} are accepted",
                           code="bad_email")
    user = users.create_user(username=_free_username(who), email=who, password=None)  # no usable password yet
    audit_record(actor=by, action=AuditAction.CREATE, study=study, object_type="user", object_id=user.username,
                 changes={"email": {"old": None, "new": who}, "via": "invitation"})
    return user, True


def member_invite(*, study: Study, who: str, role: str, by: Any, site_url: str) -> Invitation:
    """Make ``who`` (a username or an e-mail address) a member of ``study`` with ``role``. Study
    admins only. An e-mail with no account creates it and e-mails a set-password link, built on
    ``site_url`` (``https://host``), once the transaction commits."""
    permissions.require_admin(by, study)
    who = str(who).strip()
    with transaction.atomic():
        user, account_created = _account_for(who, by, study)
        membership, created = membership_set(study=study, username=user.username, role=role, by=by)
        if account_created:
            link = site_url.rstrip("/") + set_password_path(user)
            transaction.on_commit(lambda: _send_invitation(user, study, role, link, by))
    return Invitation(membership, created, account_created)


def _send_invitation(user: Any, study: Study, role: str, link: str, by: Any) -> None:
    send_mail(
        subject=f"LUSWeb: you were invited to the study {study.name}",
        message=(f"{getattr(by, 'username', 'A study admin')} invited you to the LUSWeb study {study.name!r} "
                 f"as {role.replace('_', ' ')}.\n\nYour username: {user.username}\n"
                 f"Choose your password here (the link works once):\n{link}\n"),
        from_email=settings.DEFAULT_FROM_EMAIL, recipient_list=[user.email],
    )
