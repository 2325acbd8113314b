"""Reading a lung zone from what a file says of itself: its name, or a DICOM attribute's value.

One place for the rule that the DICOM receiver, DICOMweb and the browser's batch upload share.
A zone is a code of the exam's protocol (``R1`` ... ``L7``); nothing else is ever returned.
"""
from __future__ import annotations

import re
from collections.abc import Iterable

from django.core.exceptions import ValidationError

#: A zone code standing on its own in a file name: ``..._R1.mp4``, ``L2.dcm``, ``exam-r3-loop.avi``.
_NAME_ZONE = re.compile(r"(?<![A-Za-z0-9])([RL][1-8])(?![0-9])", re.IGNORECASE)


def compiled_zone_pattern(pattern: str) -> re.Pattern[str]:
    """The study's zone pattern compiled; a ``ValidationError`` naming the problem when it is not a
    regular expression."""
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ValidationError(f"the zone pattern is not a regular expression: {exc}") from exc


def zone_from_value(value: str, pattern: str, codes: Iterable[str]) -> str | None:
    """The zone that ``pattern`` reads in ``value`` (its first group, else the whole match),
    upper-cased, when it is one of ``codes``; None otherwise."""
    if not value:
        return None
    match = compiled_zone_pattern(pattern).search(value)
    if match is None:
        return None
    found = (match.group(1) if match.groups() else match.group(0)) or ""
    found = found.strip().upper()
    return found if found in set(codes) else None


def zone_from_filename(name: str, codes: Iterable[str]) -> str | None:
    """The zone a file's name gives (the last zone code in its stem), when it is one of ``codes``."""
    stem = name.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
    stem = stem.rsplit(".", 1)[0] if "." in stem else stem
    allowed = set(codes)
    found = [m.upper() for m in _NAME_ZONE.findall(stem) if m.upper() in allowed]
    return found[-1] if found else None
