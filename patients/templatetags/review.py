"""Review tags for pages that sit below readings and cannot ask it themselves (``{% load review %}``):

* ``{% worklist_count study %}``: how many exams of a study wait for review (draft or amended) -
  the home page (``patients.studies``) and the study page (``patients.records``);
* ``{% clip_record clip as record %}``: a clip's score of record beside the AI's reading, as the
  user may see it (a blind read hides the AI) - the clip page (``patients.imaging``).
"""
from __future__ import annotations

from typing import Any

from django import template

from patients.imaging.models import ZoneClip
from patients.readings.selectors import ZoneRecord
from patients.readings.selectors import clip_record as _clip_record
from patients.readings.worklist import worklist_count as _worklist_count
from patients.studies.models import Study

register = template.Library()


@register.simple_tag
def worklist_count(study: Study) -> int:
    """Exams of ``study`` with clips that are draft (never signed) or amended."""
    return _worklist_count(study=study)


@register.simple_tag(takes_context=True)
def clip_record(context: dict[str, Any], clip: ZoneClip) -> ZoneRecord:
    """The clip's :class:`~patients.readings.selectors.ZoneRecord` for the page's user."""
    request = context.get("request")
    return _clip_record(clip=clip, user=getattr(request, "user", None))
