"""Study reads, always scoped to what the user may see."""
from __future__ import annotations

from typing import Any

from django.db.models import Count, QuerySet
from django.shortcuts import get_object_or_404

from patients.studies.models import Membership, Study
from patients.studies.permissions import role_or_404


def study_list(*, user: Any) -> QuerySet[Study]:
    qs = Study.objects.all()
    if not user.is_superuser:
        qs = qs.filter(memberships__user=user)
    return qs.annotate(patient_count=Count("patients", distinct=True)).order_by("name")


def membership_list(*, study: Study) -> QuerySet[Membership]:
    """The study's members with their users, by username."""
    return Membership.objects.filter(study=study).select_related("user").order_by("user__username")


def memberships_of(*, user: Any) -> QuerySet[Membership]:
    """The user's memberships with their studies."""
    return Membership.objects.filter(user_id=int(user.pk or 0)).select_related("study")


def study_for(*, user: Any, pk: int) -> tuple[Study, str]:
    """The study and the user's role in it; 404 when it does not exist or the user is not a member."""
    study = get_object_or_404(Study, pk=pk)
    return study, role_or_404(user, study)
