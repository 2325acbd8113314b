"""The audit trail in words: ``{"paco2_mmhg": {"old": 41, "new": 45}}`` -> ``PaCO2: 41 -> 45 mmHg``.

Services record changes as ``{field: {"old": ..., "new": ...}}`` (and a few plain values such as
``{"via": "api"}``); the audit page shows one readable line per field.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: field -> (label, unit) for the fields whose stored name is not what a reader calls them.
LABELS: dict[str, tuple[str, str]] = {
    "paco2_mmhg": ("PaCO2", "mmHg"), "pao2_mmhg": ("PaO2", "mmHg"), "ph": ("pH", ""),
    "hco3": ("HCO3", "mmol/L"), "lactate": ("Lactate", "mmol/L"), "sao2": ("SaO2", "%"),
    "fio2": ("FiO2", ""), "spo2": ("SpO2", "%"), "respiratory_rate": ("Respiratory rate", "/min"),
    "unit_entered": ("Unit entered", ""), "sampled_at": ("Sampled", ""), "recorded_at": ("Recorded", ""),
    "acquired_at": ("Acquired", ""), "birth_year": ("Birth year", ""), "admission_date": ("Admission date", ""),
    "hospital_number": ("Hospital number", ""), "keep_original": ("Keep originals", ""),
    "deidentify": ("De-identify uploads", ""), "size_bytes": ("Size", "bytes"), "sha256": ("SHA-256", ""),
    "age": ("Age", "years"),
}
_MAX_ITEMS = 10


def _label(field: str) -> tuple[str, str]:
    return LABELS.get(field, (field.replace("_", " ").capitalize(), ""))


def _value(value: Any) -> str:
    if value is None or value == "":
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        shown = ", ".join(_value(v) for v in value[:_MAX_ITEMS])
        return shown + (f" … ({len(value)} in all)" if len(value) > _MAX_ITEMS else "")
    if isinstance(value, Mapping):
        return ", ".join(f"{_label(str(k))[0].lower()} {_value(v)}" for k, v in value.items())
    return str(value)


def change_line(field: str, value: Any) -> str:
    """One field's change as words, with its unit: ``PaCO2: 41 -> 45 mmHg``, ``Name: set to X``."""
    label, unit = _label(field)
    tail = f" {unit}" if unit else ""
    if isinstance(value, Mapping) and set(value) <= {"old", "new"} and value:
        old, new = value.get("old"), value.get("new")
        if old is None and new is not None:
            return f"{label}: set to {_value(new)}{tail}"
        if new is None and old is not None:
            return f"{label}: {_value(old)}{tail} removed"
        return f"{label}: {_value(old)} -> {_value(new)}{tail}"
    return f"{label}: {_value(value)}{tail}"


def change_lines(changes: Mapping[str, Any] | None) -> list[str]:
    """Every field of an audit event's ``changes``, one readable line each, in the recorded order."""
    if not changes:
        return []
    if not isinstance(changes, Mapping):
        return [_value(changes)]
    return [change_line(str(field), value) for field, value in changes.items()]
