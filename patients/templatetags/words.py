"""``{{ code|status_words }}``: a machine status shown in words (``not_scored`` -> "not scored yet").

The same words are in ``static/js/exam_progress.js`` (``STATUS_WORDS``) for live updates.
"""
from __future__ import annotations

from django import template

register = template.Library()

#: Scoring job and clip states, as the pages say them.
STATUS_WORDS = {
    "not_scored": "not scored yet",
    "pending": "queued",
    "running": "scoring",
    "succeeded": "scored",
    "failed": "failed",
    "superseded": "superseded by a newer job",
    "cancelled": "cancelled",
    "draft": "draft (not signed)",
    "reviewed": "reviewed",
    "amended": "amended after sign-off",
}


@register.filter
def status_words(code: str | None) -> str:
    """The words for a status code; an unknown code with its underscores as spaces."""
    if not code:
        return "–"
    return STATUS_WORDS.get(code, code.replace("_", " "))
