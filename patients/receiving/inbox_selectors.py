"""Reads of the study inbox: the instances waiting for a clinician to assign them."""
from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import Http404

from patients.receiving.models import InboxItem, InboxState
from patients.records.models import Exam, Patient
from patients.studies import permissions
from patients.studies.models import Study


def inbox_waiting(*, study: Study) -> QuerySet[InboxItem]:
    """The study's waiting items, grouped by series, oldest first within it."""
    return (InboxItem.objects.filter(study=study, state=InboxState.WAITING)
            .select_related("patient", "exam").order_by("series_instance_uid", "received_at", "pk"))


def inbox_count(*, study: Study) -> int:
    return InboxItem.objects.filter(study=study, state=InboxState.WAITING).count()


def inbox_item_for(*, user: Any, pk: int) -> InboxItem:
    """Inbox item ``pk`` for a user who may see its study (404 otherwise: its existence does not leak)."""
    item = InboxItem.objects.select_related("study").filter(pk=pk).first()
    if item is None:
        raise Http404("Not found")
    permissions.role_or_404(user, item.study)
    return item


def assign_choices(*, study: Study) -> tuple[list[Patient], list[Exam]]:
    """The study's patients and their exams, newest exam first, for the assignment form."""
    patients = list(Patient.objects.filter(study=study).order_by("code"))
    exams = list(Exam.objects.filter(patient__study=study).select_related("patient")
                 .order_by("patient__code", "-acquired_at"))
    return patients, exams
