"""Patient time as a viewer may see it.

Calendar dates identify patients (an admission date plus a hospital is often enough), so only
users who may see identifying data (clinicians, study admins) see them. Researchers see the
same moments as *days since day 0*: the admission date at 00:00 local time, or the patient's
first exam when the admission date is unknown - the convention of the cohort export
(:mod:`patients.research.export`), so a day read on a page is the ``day`` column of the CSV.

:class:`PatientClock` is computed once per patient and page; pages and APIs ask it for a label
("2026-03-04 09:00" or "day 3.4") and for a plot coordinate (a Plotly date string or a number).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import Min
from django.utils import timezone

from patients.records.models import Exam, Patient
from patients.studies import permissions

#: Day 0 kinds, also shown to the viewer ("days since admission" / "days since first exam").
ADMISSION = "admission"
FIRST_EXAM = "first exam"


def local(when: dt.datetime) -> dt.datetime:
    """``when`` in the current time zone (naive datetimes are taken as already local)."""
    return timezone.localtime(when) if timezone.is_aware(when) else when


def plot_time(when: dt.datetime) -> str:
    """Local wall-clock time as Plotly date strings expect (Plotly ignores time-zone offsets)."""
    return local(when).strftime("%Y-%m-%d %H:%M:%S")


def day_zero(admission_date: dt.date | None, first_exam_at: dt.datetime | None) -> tuple[dt.datetime | None, str]:
    """Day 0 of a patient and its kind: admission 00:00 local time, else the first exam."""
    if admission_date is not None:
        tz = timezone.get_current_timezone()
        return dt.datetime.combine(admission_date, dt.time.min, tzinfo=tz), ADMISSION
    if first_exam_at is not None:
        return first_exam_at, FIRST_EXAM
    return None, ""


def days_between(origin: dt.datetime, at: dt.datetime) -> float:
    """Fractional days from ``origin`` to ``at`` (negative before day 0)."""
    return (at - origin).total_seconds() / 86400.0


@dataclass(frozen=True)
class PatientClock:
    """How one viewer sees one patient's times (exams, blood gases, clinical records)."""

    shows_dates: bool
    origin: dt.datetime | None
    origin_kind: str  # ADMISSION, FIRST_EXAM or "" (no exam and no admission date)

    @property
    def axis(self) -> str:
        """``date`` (calendar axis) or ``day`` (days since day 0)."""
        return "date" if self.shows_dates else "day"

    @property
    def axis_title(self) -> str:
        if self.shows_dates:
            return "Date"
        return f"Days since {self.origin_kind}" if self.origin_kind else "Days"

    def day(self, at: dt.datetime) -> float | None:
        """Days since day 0, two decimals (None when the patient has no day 0)."""
        if self.origin is None:
            return None
        return round(days_between(self.origin, at), 2)

    def label(self, at: dt.datetime | None, *, with_time: bool = True) -> str:
        """Text for a moment: the local date (and time) or "day N.N"."""
        if at is None:
            return "–"
        if self.shows_dates:
            return local(at).strftime("%Y-%m-%d %H:%M" if with_time else "%Y-%m-%d")
        d = self.day(at)
        return "day ?" if d is None else f"day {d:.1f}"

    def x(self, at: dt.datetime) -> str | float | None:
        """Plot coordinate: local wall-clock time for a Plotly date axis, or days since day 0."""
        return plot_time(at) if self.shows_dates else self.day(at)

    def date(self, value: dt.date | None) -> str | None:
        """A calendar date (admission) for those who may see it, else None."""
        return value.isoformat() if value is not None and self.shows_dates else None


def clock_for(*, user: Any, patient: Patient, first_exam_at: dt.datetime | None = None,
              shows_dates: bool | None = None) -> PatientClock:
    """The clock of ``patient`` for ``user``.

    ``first_exam_at`` saves a query when the caller already has the exams; ``shows_dates``
    saves the role lookup when the caller already knows it.
    """
    if shows_dates is None:
        shows_dates = permissions.can_see_identifying(user, patient.study_id)
    if patient.admission_date is None and first_exam_at is None:
        first_exam_at = (Exam.objects.filter(patient=patient).order_by("acquired_at")
                         .values_list("acquired_at", flat=True).first())
    origin, kind = day_zero(patient.admission_date, first_exam_at)
    return PatientClock(bool(shows_dates), origin, kind)


def clocks_for(*, patients: dict[int, dt.date | None], first_exam_at: dict[int, dt.datetime],
               shows_dates: bool) -> dict[int, PatientClock]:
    """Clocks of many patients of one study at once (no query): ``patients`` maps id -> admission
    date, ``first_exam_at`` id -> the patient's first exam time (when it has one)."""
    out: dict[int, PatientClock] = {}
    for pk, admission in patients.items():
        origin, kind = day_zero(admission, first_exam_at.get(pk))
        out[pk] = PatientClock(shows_dates, origin, kind)
    return out


def study_clocks(*, study_id: int, shows_dates: bool) -> dict[int, PatientClock]:
    """Clocks of every patient of a study (two queries): admission dates and first exams."""
    first = dict(Exam.objects.filter(patient__study_id=study_id).values("patient_id")
                 .annotate(first=Min("acquired_at")).values_list("patient_id", "first"))
    admissions = dict(Patient.objects.filter(study_id=study_id).values_list("id", "admission_date"))
    return clocks_for(patients=admissions, first_exam_at=first, shows_dates=shows_dates)
