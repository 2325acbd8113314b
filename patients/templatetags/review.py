"""``{% worklist_count study %}``: how many exams of a study wait for review (draft or amended).

The home page (``patients.studies``) and the study page (``patients.records``) sit below readings
and cannot ask it; their templates load this tag instead (``{% load review %}``)."""
from __future__ import annotations

from django import template

from patients.readings.worklist import worklist_count as _worklist_count
from patients.studies.models import Study

register = template.Library()


@register.simple_tag
def worklist_count(study: Study) -> int:
    """Exams of ``study`` with clips that are draft (never signed) or amended."""
    return _worklist_count(study=study)
