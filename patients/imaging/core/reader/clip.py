"""What the reader returns and raises, and the pixel helpers every format shares."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

META_KEYS = (
    "format", "codec", "transfer_syntax", "photometric", "rows", "columns", "frame_count", "fps",
    "manufacturer", "model", "transducer", "sop_instance_uid", "study_instance_uid", "series_instance_uid",
    "modality", "sop_class_uid", "sop_class_name", "bits_stored", "declared_frame_count",
)


# --- errors --------------------------------------------------------------------------------


class ClipReadError(ValueError):
    """The file cannot be turned into frames. ``str(exc)`` is a user-facing explanation."""

    code = "unreadable"


class UnsupportedFormat(ClipReadError):
    """Not a DICOM, video or image file we recognise."""

    code = "unsupported_format"


class EmptyFile(ClipReadError):
    """Zero bytes."""

    code = "empty_file"


class CorruptFile(ClipReadError):
    """A recognised format whose structure cannot be parsed."""

    code = "corrupt"


class TruncatedFile(CorruptFile):
    """The file ends before its own headers say it should (interrupted upload or copy)."""

    code = "truncated"


class PixelDataMismatch(CorruptFile):
    """The DICOM pixel data holds more than its header describes (frames hidden from view)."""

    code = "pixel_data_mismatch"


class OverBudget(ClipReadError):
    """Decoding the clip would exceed a limit of the reader's :class:`Budget`; the message names
    the limit, the value found and the setting that sets it."""

    code = "over_budget"


class TooManyFrames(OverBudget):
    code = "too_many_frames"


class FrameTooLarge(OverBudget):
    code = "frame_too_large"


class DecodedTooLarge(OverBudget):
    code = "decoded_too_large"


class NoPixelData(ClipReadError):
    """A valid DICOM object without an image (structured report, DICOMDIR, waveform ...)."""

    code = "no_pixel_data"


class NoFrames(ClipReadError):
    """A container that holds an image element / video stream but zero frames."""

    code = "no_frames"


class UndecodableCodec(ClipReadError):
    """A recognised file whose compression (transfer syntax or video codec) we cannot decode."""

    code = "undecodable_codec"


# --- result --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Clip:
    """Decoded clip.

    ``frames``: ``uint8 [T, H, W]`` grey. ``fps``: frames per second, ``None`` for a still or
    when the file does not say. ``meta``: JSON-serialisable description; always has every key of
    ``META_KEYS`` (``None`` where unknown) plus format-specific extras.
    """

    frames: np.ndarray
    fps: float | None
    meta: dict[str, Any] = field(default_factory=dict)


def new_meta(fmt: str) -> dict[str, Any]:
    meta: dict[str, Any] = dict.fromkeys(META_KEYS)
    meta["format"] = fmt
    return meta


def finish(frames: np.ndarray, fps: float | None, meta: dict[str, Any]) -> Clip:
    """Validate the frame stack and fill the shape-derived meta fields."""
    if frames.ndim != 3 or frames.shape[0] == 0:
        raise NoFrames(f"{meta['format']} file contains no frames")
    frames = np.ascontiguousarray(frames, dtype=np.uint8)
    if frames.shape[0] == 1:
        fps = None  # a still has no frame rate, whatever the container claims
    fps = round(float(fps), 6) if fps else None
    meta.update(rows=int(frames.shape[1]), columns=int(frames.shape[2]), frame_count=int(frames.shape[0]), fps=fps)
    return Clip(frames=frames, fps=fps, meta=meta)


# --- pixel helpers shared by the formats --------------------------------------------------


def luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma of ``[..., 3]`` samples: uint8 in -> uint8 out (rounded), else float32."""
    if rgb.dtype == np.uint8:
        # Integer arithmetic: exact rounding and ~3x faster than float on large clips.
        acc = rgb[..., 0] * np.uint32(299) + rgb[..., 1] * np.uint32(587) + rgb[..., 2] * np.uint32(114)
        return ((acc + 500) // 1000).astype(np.uint8)
    f = rgb.astype(np.float32)
    return f[..., 0] * 0.299 + f[..., 1] * 0.587 + f[..., 2] * 0.114


def scale_to_uint8(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Map ``lo..hi`` linearly onto 0..255 (clipped, rounded)."""
    if hi <= lo:
        return np.zeros(values.shape, dtype=np.uint8)
    out = (values.astype(np.float32) - np.float32(lo)) * np.float32(255.0 / (hi - lo))
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
