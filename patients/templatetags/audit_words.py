"""``{{ event.changes|change_lines }}``: an audit event's changes as readable lines
(:mod:`patients.audit.display`)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import template

from patients.audit.display import change_lines as _change_lines

register = template.Library()


@register.filter
def change_lines(changes: Mapping[str, Any] | None) -> list[str]:
    """``PaCO2: 41 -> 45 mmHg`` and one such line per changed field."""
    return _change_lines(changes)
