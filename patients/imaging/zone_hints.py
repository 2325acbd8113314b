"""Zone hints for a batch upload: which zone each file is, read from what the file says of itself.

The browser sends the first :data:`HEAD_BYTES` of each file it is about to upload. A DICOM file's
zone is read from the study's zone attribute (``Study.dicom_zone_tag``) with the study's pattern
(``Study.dicom_zone_pattern``), as the DICOM receiver reads it; any other file's (or a DICOM
file without it) from its name (:func:`patients.imaging.zone_rules.zone_from_filename`, the rule the
browser's ``batch-upload.js`` mirrors). Only zones of the exam's protocol are ever returned.
Nothing is stored: the user confirms or corrects every zone before uploading.
"""
from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import pydicom
from pydicom.errors import InvalidDicomError

from lusweb.errors import ServiceError
from patients.imaging.zone_rules import zone_from_filename, zone_from_value
from patients.records.models import Exam
from patients.studies.protocols import get_protocol

#: The bytes of a file the hint reads: enough for a DICOM header before its pixel data.
HEAD_BYTES = 256 * 1024
#: Files in one request (an exam has at most 16 zones; room for retries and extra files).
MAX_FILES = 64


@dataclass(frozen=True)
class ZoneHint:
    """The zone a file gives (None: none of the protocol's) and where it was read."""

    name: str
    zone: str | None
    source: str  # "dicom" (the zone attribute), "name" (the file name) or "" (none found)
    dicom: bool  # the file is DICOM (a Part 10 preamble and "DICM")
    value: str = ""  # the DICOM zone attribute's value, when it has one
    note: str = ""  # why the header could not be read, when it could not

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _is_dicom(head: bytes) -> bool:
    return len(head) >= 132 and head[128:132] == b"DICM"


def _attribute(head: bytes, keyword: str) -> tuple[str, str]:
    """The value of ``keyword`` in the DICOM header at the start of ``head`` (and a note when the
    header could not be read)."""
    try:
        ds = pydicom.dcmread(io.BytesIO(head), stop_before_pixels=True, defer_size=4096)
        value = ds.get(keyword)
    except (InvalidDicomError, EOFError, ValueError, KeyError, TypeError, OSError) as exc:
        return "", f"the DICOM header could not be read from the file's first {len(head) // 1024} KiB ({exc})"
    if value is None:
        return "", ""
    if isinstance(value, pydicom.dataelem.DataElement):
        value = value.value
    text = "\\".join(str(v) for v in value) if isinstance(value, pydicom.multival.MultiValue) else str(value)
    return text.strip()[:200], ""


def zone_hint(*, exam: Exam, name: str, head: bytes) -> ZoneHint:
    """The zone that one file (its name and its first bytes) gives for ``exam``."""
    codes = get_protocol(exam.protocol).codes
    study = exam.study
    dicom = _is_dicom(head)
    value, note = _attribute(head[:HEAD_BYTES], study.dicom_zone_tag) if dicom else ("", "")
    zone = zone_from_value(value, study.dicom_zone_pattern, codes) if value else None
    if zone is not None:
        return ZoneHint(name, zone, "dicom", dicom, value, note)
    zone = zone_from_filename(name, codes)
    return ZoneHint(name, zone, "name" if zone else "", dicom, value, note)


def zone_hints(*, exam: Exam, files: Sequence[tuple[str, bytes]]) -> list[ZoneHint]:
    """:func:`zone_hint` of each ``(name, first bytes)``, in order; at most :data:`MAX_FILES`."""
    if not files:
        raise ServiceError("send the files (their first 256 KiB) in the field 'files'", code="no_files")
    if len(files) > MAX_FILES:
        raise ServiceError(f"{len(files)} files: send at most {MAX_FILES} at once", code="too_many_files")
    return [zone_hint(exam=exam, name=name, head=head) for name, head in files]
