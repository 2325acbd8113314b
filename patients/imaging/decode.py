"""The worker's reading of a stored upload: decode it and, in de-identifying studies, de-identify it.

The upload is read through Django's storage API (``clip.received.open()``), so media may live on
S3-compatible storage and workers on other machines; a stream that cannot seek (some remote
storages) is first copied into LUSWeb's temporary folder (``patients.imaging.tempfiles``).
"""
from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

import numpy as np

from patients.imaging.budget import clip_budget
from patients.imaging.checks import IngestError, text
from patients.imaging.core import deid
from patients.imaging.core.reader import ClipReadError, read_clip
from patients.imaging.core.sector import find_sector
from patients.imaging.models import ZoneClip
from patients.imaging.tempfiles import temp_file


@dataclass
class Decoded:
    """What is stored: frames (redacted when de-identified), meta, and the de-identified DICOM."""

    frames: np.ndarray
    fps: float | None
    meta: dict[str, Any]
    stored: deid.DeidResult | None
    source_study_uid: str  # the upload's own Study Instance UID (``meta`` has the remapped one)


def _seekable(fh: Any) -> bool:
    try:
        return bool(fh.seekable())
    except (AttributeError, ValueError, OSError):
        return False


@contextmanager
def opened_upload(clip: ZoneClip) -> Iterator[IO[bytes]]:
    """The clip's stored upload as a seekable binary file, read through the storage API."""
    field = clip.received
    try:
        stored = field.storage.open(str(field.name), "rb")  # a File of its own: the field keeps no state
    except FileNotFoundError as exc:
        raise IngestError("the uploaded file is no longer stored; upload it again", code="upload_missing") from exc
    with stored:
        if _seekable(stored):
            stored.seek(0)
            yield stored  # type: ignore[misc]
            return
        with temp_file("ingest", suffix=f".{clip.format}") as (path, fd), open(fd, "wb", closefd=False) as out:
            shutil.copyfileobj(stored, out)
            out.flush()
            with path.open("rb") as local:
                yield local


def decode_upload(clip: ZoneClip) -> Decoded:
    """Read the clip's upload and, when it is to be stored de-identified, de-identify it."""
    with opened_upload(clip) as fh:
        try:
            data = read_clip(fh, budget=clip_budget())
        except ClipReadError as exc:
            raise IngestError(str(exc), code=getattr(exc, "code", "unreadable")) from exc
        meta = dict(data.meta)
        source_uid = text(data.meta, "study_instance_uid", 64)
        if not clip.deidentified:
            return Decoded(data.frames, data.fps, meta, None, source_uid)
        raw = b""
        if meta.get("format") == "dicom":
            fh.seek(0)
            raw = fh.read()
    frames, stored, meta = _deidentify(clip, raw=raw, frames=data.frames, fps=data.fps, meta=meta)
    return Decoded(frames, data.fps, meta, stored, source_uid)


def _deidentify(clip: ZoneClip, *, raw: bytes, frames: np.ndarray, fps: float | None,
                meta: dict[str, Any]) -> tuple[np.ndarray, deid.DeidResult, dict[str, Any]]:
    """Redact burned-in text outside the sector and de-identify the header (see ``patients.imaging.core.deid``).

    Returns the redacted frames, the de-identified DICOM to store and the clip's meta with the
    remapped UIDs. DICOM uploads keep their header (cleaned); videos and images become a
    de-identified DICOM of their redacted frames.
    """
    study, exam = clip.exam.study, clip.exam
    sector = find_sector(frames)
    redacted = deid.redact_frames(frames, sector.mask) if sector.found else frames
    pseudo = deid.pseudonym(study.secret, exam.patient_id)
    try:
        if meta.get("format") == "dicom":
            result = deid.deidentify_dataset(raw, secret=study.secret, grey_frames=frames, sector=sector,
                                             patient_pseudonym=pseudo, zone=clip.zone)
        else:
            result = deid.dicom_from_frames(redacted, secret=study.secret, source_sha256=clip.sha256,
                                            patient_pseudonym=pseudo, fps=fps, zone=clip.zone,
                                            manufacturer=text(meta, "manufacturer", 64), model=text(meta, "model", 64))
    except Exception as exc:  # pydicom raises assorted errors on odd headers: refuse rather than leak
        # The exception's text may quote header values (names): the stored error names its kind only.
        raise IngestError(f"the file could not be de-identified ({exc.__class__.__name__}); it was not stored",
                          code="deidentification_failed") from exc
    meta = dict(meta)
    meta.update(
        sop_instance_uid=result.sop_instance_uid or None, study_instance_uid=result.study_instance_uid or None,
        series_instance_uid=result.series_instance_uid or None,
        deidentification={
            "profile": "DICOM PS3.15 E.1 basic + clean pixel data", "source_format": meta.get("format"),
            "pixels": result.pixels, "sector_found": sector.found, "sector_method": sector.method,
            "sector_area_fraction": round(sector.area_fraction, 4),
            "stored_sha256": hashlib.sha256(result.data).hexdigest(),
        },
    )
    return redacted, result, meta
