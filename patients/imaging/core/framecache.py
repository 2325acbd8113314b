"""The frame cache: a clip's decoded frames as the ingest check stores them and the scoring
worker reads them (uint8 [T, H, W] in a compressed ``.npz``), so a scoring job never decodes a
video or a JPEG DICOM again. One writer and one reader, used by ingest, the worker and
``benchmarks/bench_scoring.py``."""
from __future__ import annotations

import io
from typing import IO, Any

import numpy as np


def frames_npz(frames: np.ndarray) -> bytes:
    """The cache file's bytes for decoded frames."""
    buf = io.BytesIO()
    np.savez_compressed(buf, frames=np.ascontiguousarray(frames, dtype=np.uint8))
    return buf.getvalue()


def frames_read(fh: IO[bytes] | Any) -> np.ndarray:
    """The frames of a cache file opened for reading, uint8 [T, H, W]."""
    with np.load(fh) as data:
        frames: np.ndarray = data["frames"]
    return frames
