"""The export's parameters: level, format, model version and blood-gas window, from a query."""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from scoring.models import ModelVersion

LEVELS = ("zone", "exam", "patient")
FORMATS = ("long", "wide")
DEFAULT_WINDOW_HOURS = 12.0
MAX_WINDOW_HOURS = 24.0 * 14


class ExportParamError(ValueError):
    """A bad export parameter; the message names it and the valid values."""


@dataclass(frozen=True)
class ExportParams:
    level: str = "zone"
    format: str = "long"
    model: str | None = None
    window_hours: float = DEFAULT_WINDOW_HOURS
    identifying: bool = False

    @property
    def wide(self) -> bool:
        return self.format == "wide"


def parse_export_params(query: Mapping[str, Any], *, identifying: bool) -> ExportParams:
    """Read ``level``, ``format``, ``model`` and ``window_hours``; raise :class:`ExportParamError`."""

    def get(name: str) -> str:
        raw = query.get(name)
        return "" if raw is None else str(raw).strip()

    level = get("level") or "zone"
    if level not in LEVELS:
        raise ExportParamError(f"level={level!r}: expected one of {', '.join(LEVELS)}")
    fmt = get("format") or "long"
    if fmt not in FORMATS:
        raise ExportParamError(f"format={fmt!r}: expected one of {', '.join(FORMATS)}")
    if fmt == "wide" and level == "patient":
        raise ExportParamError("format=wide needs level=exam or level=zone (one row per exam, a column per zone)")
    model = get("model") or None
    if model is not None and not ModelVersion.objects.filter(version=model).exists():
        known = list(ModelVersion.objects.order_by("-created_at").values_list("version", flat=True)[:20])
        raise ExportParamError(f"model={model!r} is not a known model version; known: {', '.join(known) or 'none'}")
    raw_window = get("window_hours") or str(DEFAULT_WINDOW_HOURS)
    try:
        window = float(raw_window)
    except ValueError:
        raise ExportParamError(f"window_hours={raw_window!r} is not a number") from None
    if math.isnan(window) or not 0 < window <= MAX_WINDOW_HOURS:
        raise ExportParamError(f"window_hours={raw_window!r}: expected more than 0 and at most {MAX_WINDOW_HOURS:g}")
    return ExportParams(level=level, format=fmt, model=model, window_hours=window, identifying=identifying)


def parse_flag(query: Mapping[str, Any], name: str) -> bool:
    """A 0/1 style query flag; anything else is an :class:`ExportParamError`."""
    raw = str(query.get(name) or "").strip().lower()
    if raw in ("", "0", "false", "no"):
        return False
    if raw in ("1", "true", "yes"):
        return True
    raise ExportParamError(f"{name}={raw!r}: expected 1 or 0")
