"""Read an uploaded lung-ultrasound clip (DICOM, video or still image) into grey frames.

Pure Python: no Django import, so the scoring worker, the ingest service and the tests share it.

Public contract
---------------
``read_clip(source, budget=Budget()) -> Clip`` where ``source`` is a path, a bytes-like object or
a binary file object. The format is sniffed from the first bytes (:func:`probe_format`), never
from the file name, because uploads arrive with arbitrary or missing extensions.

``budget`` (:class:`Budget`) limits the frames, the samples per frame and the decoded bytes. The
readers check what the header or container declares before decoding, then count frame by frame
while decoding (a header can lie) and stop at the first frame over a limit, raising an
:class:`OverBudget` subclass (``too_many_frames``, ``frame_too_large``, ``decoded_too_large``)
whose message names the limit, the value found and its ``LUSWEB_*`` setting. Frames are stacked
as they come, never listed and stacked afterwards, so a refused clip never held more than the
budget.

``Clip.frames`` is ``uint8 [T, H, W]``: colour is reduced to ITU-R BT.601 luma
(``Y = 0.299 R + 0.587 G + 0.114 B``, rounded), palette colour is expanded through its lookup
table first, MONOCHROME1 is inverted, and data of more than 8 bits is windowed (VOI window when
the file has one, otherwise the clip's own min..max) into 0..255.

Every failure the uploader can cause raises a :class:`ClipReadError` subclass whose message is
fit for a clinician-facing 400 response and whose ``code`` is a stable machine-readable slug.
A missing path (``FileNotFoundError``) is a programming error and is not wrapped.
"""
from __future__ import annotations

import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any, BinaryIO

from patients.imaging.core.reader.budget import Budget
from patients.imaging.core.reader.clip import (
    Clip,
    ClipReadError,
    CorruptFile,
    DecodedTooLarge,
    EmptyFile,
    FrameTooLarge,
    NoFrames,
    NoPixelData,
    OverBudget,
    PixelDataMismatch,
    TooManyFrames,
    TruncatedFile,
    UndecodableCodec,
    UnsupportedFormat,
    finish,
)

__all__ = [
    "Budget", "Clip", "ClipReadError", "CorruptFile", "DecodedTooLarge", "EmptyFile", "FrameTooLarge", "NoFrames",
    "NoPixelData", "OverBudget", "PROBE_BYTES", "PixelDataMismatch", "Source", "TooManyFrames", "TruncatedFile",
    "UndecodableCodec", "UnsupportedFormat", "probe_format", "read_clip",
]

Source = str | os.PathLike[str] | bytes | bytearray | memoryview | IO[bytes]

# Number of leading bytes probe_format needs: 128-byte DICOM preamble + "DICM".
PROBE_BYTES = 132


# --- format sniffing -----------------------------------------------------------------------


def _looks_like_bare_dicom(head: bytes) -> bool:
    """A DICOM data set without the 128-byte preamble (old ACR-NEMA style or raw network dumps).

    The first element is then a tag of group 0x0002 (file meta) or 0x0008 (identifying),
    little- or big-endian, followed by a two-letter explicit VR or (little-endian only) a
    small implicit length.
    """
    if len(head) < 8:
        return False
    vr = head[4:6]
    explicit = vr.isalpha() and vr.isupper()
    if head[0:2] in (b"\x00\x02", b"\x00\x08") and explicit:
        return True  # Explicit VR Big Endian
    if head[0:2] not in (b"\x02\x00", b"\x08\x00") or head[3] != 0:
        return False
    return explicit or int.from_bytes(head[4:8], "little") < 0x10000


def probe_format(head: bytes) -> str | None:
    """Name the container format from the first bytes of a file (at least 132 for DICOM).

    Returns one of ``'dicom', 'mp4', 'mov', 'avi', 'mpeg', 'gif', 'png', 'jpeg'`` or ``None``.
    Sniffing by magic bytes, never by file name.
    """
    head = bytes(head[:PROBE_BYTES])
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "dicom"
    if head[4:8] == b"ftyp":
        # ISO base media: Apple QuickTime declares the 'qt  ' major brand, everything else is MP4-ish.
        return "mov" if head[8:12] == b"qt  " else "mp4"
    if head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"):
        return "mov"  # pre-ftyp QuickTime files start directly with an atom
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if head[:4] in (b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3"):
        return "mpeg"  # MPEG program stream pack header / elementary-stream sequence header
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if head[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if _looks_like_bare_dicom(head):
        return "dicom"
    return None


# --- entry point ---------------------------------------------------------------------------


@contextmanager
def _open_source(source: Source) -> Iterator[BinaryIO]:
    """Yield a seekable binary stream positioned at 0 for any accepted source type."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        yield io.BytesIO(bytes(source))
    elif isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as fh:
            yield fh
    else:
        fp: Any = source
        if not (hasattr(fp, "seekable") and fp.seekable()):
            fp = io.BytesIO(fp.read())  # sockets / pipes: decoders need random access
        else:
            fp.seek(0)
        yield fp


def read_clip(source: Source, budget: Budget | None = None) -> Clip:
    """Decode a DICOM, video (MP4/MOV/AVI/MPEG) or image (GIF/PNG/JPEG) clip to grey frames.

    Raises a :class:`ClipReadError` subclass with a user-facing message for any bad content, an
    :class:`OverBudget` one for a clip over ``budget`` (default: ``Budget()``, the limits that
    the ``LUSWEB_MAX_*`` settings default to).
    """
    budget = budget or Budget()
    with _open_source(source) as fp:
        head = fp.read(PROBE_BYTES)
        fp.seek(0)
        if not head:
            raise EmptyFile("file is empty (0 bytes): nothing to read")
        fmt = probe_format(head)
        if fmt is None:
            raise UnsupportedFormat(
                "not a recognised DICOM, video or image file (expected DICOM, MP4, MOV, AVI, MPEG, GIF, PNG or JPEG)"
            )
        if fmt == "dicom":
            from patients.imaging.core.reader.dicom import read_dicom  # lazy: pydicom loads on the first DICOM

            return finish(*read_dicom(fp, budget))
        if fmt in ("mp4", "mov", "avi", "mpeg"):
            from patients.imaging.core.reader.video import read_video  # lazy: PyAV loads on the first video

            return finish(*read_video(fp, fmt, budget))
        from patients.imaging.core.reader.image import read_image  # lazy: Pillow loads on the first image

        return finish(*read_image(fp, fmt, budget))
