"""Who may do what in a study. One place, used by pages and API alike."""
from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, Subquery
from django.http import Http404

from patients.studies.models import Membership, Role, Study

READ_ROLES = frozenset({Role.STUDY_ADMIN, Role.CLINICIAN, Role.RESEARCHER})
WRITE_ROLES = frozenset({Role.STUDY_ADMIN, Role.CLINICIAN})
ADMIN_ROLES = frozenset({Role.STUDY_ADMIN})
IDENTIFYING_ROLES = WRITE_ROLES
_ROLES = "_lusweb_roles"


def role_in_study(user: Any, study: Study | int) -> str | None:
    """The user's role in the study, or None. Superusers act as study admins everywhere."""
    if not getattr(user, "is_authenticated", False):
        return None
    if user.is_superuser:
        return Role.STUDY_ADMIN
    study_id = study.pk if isinstance(study, Study) else study
    # Remembered on this request's user object (roles_forget drops them after a change).
    cache: dict[int, str | None] = user.__dict__.setdefault(_ROLES, {})
    if study_id not in cache:
        cache[study_id] = (
            Membership.objects.filter(user=user, study_id=study_id).values_list("role", flat=True).first()
        )
    return cache[study_id]


def role_remember(user: Any, study_id: int, role: str | None) -> None:
    """Remember the user's role in a study, read by the caller's own query (a membership subquery
    beside the row it loaded): :func:`role_in_study` then answers it without a query."""
    if getattr(user, "is_authenticated", False) and not user.is_superuser:
        user.__dict__.setdefault(_ROLES, {})[study_id] = role


def role_subquery(user: Any, study_field: str) -> Subquery:
    """The user's role in the study of ``study_field`` (an ``OuterRef`` path), for annotating."""
    return Subquery(Membership.objects.filter(user_id=user.pk, study_id=OuterRef(study_field)).values("role")[:1])


def roles_forget(user: Any) -> None:
    """Drop the roles :func:`role_in_study` remembered on ``user`` (this request's object): the next
    check reads the membership again."""
    if user is not None:
        user.__dict__.pop(_ROLES, None)


def can_see_identifying(user: Any, study: Study | int) -> bool:
    return role_in_study(user, study) in IDENTIFYING_ROLES


def require_read(user: Any, study: Study) -> str:
    role = role_in_study(user, study)
    if role not in READ_ROLES:
        raise PermissionDenied("You are not a member of this study.")
    assert role is not None
    return role


def require_write(user: Any, study: Study) -> str:
    return _require_change(user, study, WRITE_ROLES, "Researchers have read-only access; ask a clinician or study admin.")


def require_admin(user: Any, study: Study) -> str:
    return _require_change(user, study, ADMIN_ROLES, "Only a study admin can manage this study.")


def _require_change(user: Any, study: Study, roles: frozenset[str], refusal: str) -> str:
    """The user's role when it is one of ``roles`` and the study is not archived."""
    role = require_read(user, study)
    if role not in roles:
        raise PermissionDenied(refusal)
    if study.archived:
        raise PermissionDenied(f"Study {study.name!r} is archived and read-only.")
    return role


def can_create_study(user: Any) -> bool:
    return bool(getattr(user, "is_authenticated", False) and user.has_perm("patients.add_study"))


def role_or_404(user: Any, study: Study | int) -> str:
    """The user's role; 404 (not 403) for outsiders, so that a study's existence does not leak."""
    role = role_in_study(user, study)
    if role is None:
        raise Http404("Not found")
    return role


def visible_study(user: Any, pk: int) -> tuple[Study, str]:
    """Study ``pk`` and the user's role in it; the same 404 whether it is missing or not theirs."""
    study = Study.objects.filter(pk=pk).first()
    if study is None:
        raise Http404("Not found")
    return study, role_or_404(user, study)
