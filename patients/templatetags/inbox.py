"""``{% load inbox %}``: ``{% inbox_count study as waiting %}``, how many received DICOM instances
wait in the study's inbox (``patients.receiving``) - for the study page, which sits below receiving."""
from __future__ import annotations

from django import template

from patients.receiving.inbox_selectors import inbox_count as _inbox_count
from patients.studies.models import Study

register = template.Library()


@register.simple_tag
def inbox_count(study: Study) -> int:
    return _inbox_count(study=study)
