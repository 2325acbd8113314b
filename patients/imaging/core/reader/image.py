"""Still and animated images (GIF, PNG, JPEG) through Pillow."""
from __future__ import annotations

from typing import Any, BinaryIO

import numpy as np
from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

from patients.imaging.core.reader.clip import (
    ClipReadError,
    CorruptFile,
    NoFrames,
    TruncatedFile,
    new_meta,
    scale_to_uint8,
)


def _pil_grey(image: Any) -> np.ndarray:
    """A Pillow frame to uint8 grey; Pillow's 'L' conversion is the BT.601 luma."""
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return (np.asarray(image, dtype=np.uint32) // 257).astype(np.uint8)
    if mode in ("I", "F"):
        values = np.asarray(image, dtype=np.float32)
        return scale_to_uint8(values, float(values.min()), float(values.max()))
    if mode not in ("L", "P", "RGB", "RGBA", "LA", "PA", "1", "RGBX"):
        image = image.convert("RGB")  # CMYK, YCbCr, LAB, HSV ...
    return np.asarray(image.convert("L"), dtype=np.uint8)


def _gif_fps(durations: list[int]) -> float | None:
    # Browsers show frames of <= 10 ms for 100 ms; a clip should play back as it does there.
    shown = [100 if d <= 10 else d for d in durations if d is not None and d >= 0]
    return 1000.0 * len(shown) / sum(shown) if shown and sum(shown) > 0 else None


def read_image(fp: BinaryIO, fmt: str) -> tuple[np.ndarray, float | None, dict[str, Any]]:
    """Frames (uint8 grey [T,H,W]), fps (animated GIF) and meta of a GIF, PNG or JPEG file."""
    meta = new_meta(fmt)
    frames: list[np.ndarray] = []
    durations: list[int] = []
    try:
        with Image.open(fp) as image:
            meta.update(codec=image.format, photometric=image.mode)
            for frame in ImageSequence.Iterator(image):
                if fmt == "jpeg":
                    frame = ImageOps.exif_transpose(frame)  # phone photos store rotation in EXIF
                frames.append(_pil_grey(frame))
                durations.append(frame.info.get("duration", 0))
    except Image.DecompressionBombError as exc:
        raise ClipReadError(f"image is too large to process safely: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise CorruptFile(f"{fmt.upper()} file is corrupt and could not be decoded") from exc
    except (OSError, EOFError, SyntaxError, ValueError) as exc:
        if "truncated" in str(exc) or isinstance(exc, EOFError):
            raise TruncatedFile(f"file is truncated: the {fmt.upper()} image data is cut off") from exc
        raise CorruptFile(f"{fmt.upper()} file is corrupt and could not be decoded: {exc}") from exc
    if not frames:
        raise NoFrames(f"{fmt.upper()} file contains no frames")
    if len({f.shape for f in frames}) > 1:
        raise CorruptFile(f"{fmt.upper()} frames have different sizes")
    fps = _gif_fps(durations) if len(frames) > 1 else None
    return np.stack(frames), fps, meta
