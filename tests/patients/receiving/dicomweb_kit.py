"""Helpers of the DICOMweb and inbox tests: phantom ultrasound instances as a scanner sends them,
and STOW-RS multipart bodies."""
from __future__ import annotations

import io
from typing import Any

import pydicom

from patients.imaging.core.phantoms import phantom_cohort_clip, write_dicom

BOUNDARY = "lusweb-test-boundary-7f3a"
STOW_TYPE = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'


def instance(*, patient_id: str, zone: str = "", study_uid: str | None = None, series_uid: str | None = None,
             seed: int = 1, study_date: str = "") -> bytes:
    """A 3-frame phantom Ultrasound Multi-frame instance; ``zone`` goes into SeriesDescription
    (the study's default zone tag)."""
    buf = io.BytesIO()
    write_dicom(phantom_cohort_clip(1, seed=seed, n_frames=3, rows=64, columns=64), buf, patient_id=patient_id,
                study_uid=study_uid, series_uid=series_uid, study_date=study_date)
    ds = pydicom.dcmread(io.BytesIO(buf.getvalue()))
    ds.SeriesDescription = f"Lung {zone}" if zone else "Lung"
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def uids(data: bytes) -> tuple[str, str, str]:
    ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    return str(ds.SOPClassUID), str(ds.SOPInstanceUID), str(ds.StudyInstanceUID)


def multipart(*parts: bytes | tuple[str, bytes], boundary: str = BOUNDARY) -> bytes:
    """A multipart/related body; a part given as (content type, bytes) says its own type."""
    out = b"preamble to ignore\r\n"
    for part in parts:
        kind, data = part if isinstance(part, tuple) else ("application/dicom", part)
        out += b"--" + boundary.encode() + b"\r\nContent-Type: " + kind.encode() + b"\r\n\r\n" + data + b"\r\n"
    return out + b"--" + boundary.encode() + b"--\r\n"


def stow(api: Any, body: bytes, *, path: str = "/dicomweb/studies", content_type: str = STOW_TYPE,
         **query: Any) -> Any:
    suffix = "?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else ""
    return api.generic("POST", path + suffix, body, content_type=content_type,
                       HTTP_ACCEPT="application/dicom+json")


def sequence(answer: dict[str, Any], tag: str) -> list[dict[str, Any]]:
    return list(answer.get(tag, {}).get("Value", []))


def value(item: dict[str, Any], tag: str) -> Any:
    values = item.get(tag, {}).get("Value")
    return values[0] if values else None
