"""Phantom clips as GIF and PNG files: inputs for the reader, ingest and page tests only (the product
writes phantoms as DICOM and MP4, :mod:`patients.imaging.core.phantoms`)."""
from __future__ import annotations

import io
import os

from PIL import Image

from patients.imaging.core.phantoms import PhantomClip


def write_gif(phantom: PhantomClip, path: str | os.PathLike[str] | io.BytesIO) -> None:
    """Animated GIF, looping; GIF timing has 10 ms resolution so fps round-trips approximately."""
    images = [Image.fromarray(frame, mode="L") for frame in phantom.frames]
    duration = max(20, int(round(1000.0 / phantom.spec.fps / 10.0)) * 10)
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:], duration=duration, loop=0)


def write_png(phantom: PhantomClip, path: str | os.PathLike[str] | io.BytesIO, *, frame: int = 0) -> None:
    """One frame (the first by default) as an 8-bit grey PNG."""
    Image.fromarray(phantom.frames[frame], mode="L").save(path, format="PNG")
