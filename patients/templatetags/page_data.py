"""``{{ data|page_data:"timeline-data" }}``: a page's data for its scripts, as Django's
``json_script`` writes it, byte for byte, in a fraction of the time.

``json_script`` escapes ``<``, ``>`` and ``&`` with ``str.translate``, a dictionary lookup per
character: on the 99 kB of a 20-exam timeline that was 6 ms of a 30 ms page. Three
``str.replace`` calls give the same text.
"""
from __future__ import annotations

import json
from typing import Any

from django import template
from django.core.serializers.json import DjangoJSONEncoder
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

#: What json_script escapes, and with what (django.utils.html._json_script_escapes). None of the
#: replacements contains a character replaced after it, so the order does not matter.
ESCAPES: tuple[tuple[str, str], ...] = (("&", "\\u0026"), ("<", "\\u003C"), (">", "\\u003E"))


@register.filter
def page_data(value: Any, element_id: str) -> SafeString:
    """``value`` as JSON in ``<script id="element_id" type="application/json">``, safe to embed."""
    text = json.dumps(value, cls=DjangoJSONEncoder)
    for char, escaped in ESCAPES:
        text = text.replace(char, escaped)
    return format_html('<script id="{}" type="application/json">{}</script>', element_id, mark_safe(text))  # escaped above
