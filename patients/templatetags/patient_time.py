"""``{{ moment|when:clock }}``: a patient's moment as the viewer may see it (see patients.records.chrono)."""
from __future__ import annotations

import datetime as dt

from django import template

from patients.records.chrono import PatientClock
from patients.records.units import KPA_TO_MMHG

register = template.Library()


@register.filter
def when(value: dt.datetime | None, clock: PatientClock | None) -> str:
    """Local date and time for clinicians and study admins, "day N.N" for researchers.

    A page that forgets to pass a clock shows nothing rather than a date it may not show.
    """
    if clock is None:
        return "–"
    return clock.label(value)


@register.filter
def when_date(value: dt.datetime | None, clock: PatientClock | None) -> str:
    """As :func:`when`, without the time of day for those who see dates."""
    if clock is None:
        return "–"
    return clock.label(value, with_time=False)


@register.filter
def kpa(mmhg: float | None) -> float | None:
    """A pressure stored in mmHg, in kPa (as a gas entered in kPa was typed)."""
    return None if mmhg is None else mmhg / KPA_TO_MMHG
