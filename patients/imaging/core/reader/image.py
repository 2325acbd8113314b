"""Still and animated images (GIF, PNG, JPEG) through Pillow."""
from __future__ import annotations

import re
from typing import Any, BinaryIO

import numpy as np
from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

from patients.imaging.core.reader.budget import PIXELS_SETTING, Budget, FrameStack
from patients.imaging.core.reader.clip import (
    ClipReadError,
    CorruptFile,
    FrameTooLarge,
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


def _bomb_error(exc: Exception, budget: Budget) -> FrameTooLarge:
    """Pillow's decompression-bomb guard fired while reading the header (an image of more than
    twice ``Image.MAX_IMAGE_PIXELS``): the same refusal as the budget's, with Pillow's count."""
    found = re.search(r"\((\d+) pixels\)", str(exc))
    size = f"{int(found.group(1)):,} pixels" if found else "more than twice the limit"
    return FrameTooLarge(f"a frame of the image has {size}, over the limit of {budget.max_pixels_per_frame:,} samples "
                         f"per frame ({PIXELS_SETTING})")


def _frame_count(image: Any, fmt: str) -> int:
    """Frames of an animated GIF or PNG (Pillow walks the frame headers without decoding them)."""
    return int(getattr(image, "n_frames", 1) or 1) if fmt in ("gif", "png") else 1


def _decode_frames(image: Any, fmt: str, budget: Budget) -> tuple[np.ndarray, list[int]]:
    """Check the header against the budget, then decode frame by frame into a frame stack."""
    count = _frame_count(image, fmt)
    budget.check_declared(frames=count, width=image.width, height=image.height, samples=len(image.getbands()))
    stack = FrameStack(budget, expected=count)
    durations: list[int] = []
    for frame in ImageSequence.Iterator(image):
        if fmt == "jpeg":
            frame = ImageOps.exif_transpose(frame)  # phone photos store rotation in EXIF
        budget.check_frame(frame.width, frame.height, len(frame.getbands()))
        grey = _pil_grey(frame)
        if stack.frame_shape not in (None, grey.shape):
            raise CorruptFile(f"{fmt.upper()} frames have different sizes")
        stack.append(grey)
        durations.append(frame.info.get("duration", 0))
    return stack.frames(), durations


def read_image(fp: BinaryIO, fmt: str, budget: Budget) -> tuple[np.ndarray, float | None, dict[str, Any]]:
    """Frames (uint8 grey [T,H,W]), fps (animated GIF) and meta of a GIF, PNG or JPEG file.

    Sets Pillow's own decompression-bomb guard (``Image.MAX_IMAGE_PIXELS``, process-wide) to the
    budget's samples per frame: Pillow then refuses at ``open`` any image of more than twice
    that many pixels, before this reader's own checks of the header.
    """
    meta = new_meta(fmt)
    Image.MAX_IMAGE_PIXELS = budget.max_pixels_per_frame
    try:
        with Image.open(fp) as image:
            meta.update(codec=image.format, photometric=image.mode)
            frames, durations = _decode_frames(image, fmt, budget)
    except ClipReadError:
        raise  # over budget, frames of different sizes: worded already (ValueErrors, kept from the clause below)
    except Image.DecompressionBombError as exc:
        raise _bomb_error(exc, budget) from exc
    except UnidentifiedImageError as exc:
        raise CorruptFile(f"{fmt.upper()} file is corrupt and could not be decoded") from exc
    except (OSError, EOFError, SyntaxError, ValueError) as exc:
        if "truncated" in str(exc) or isinstance(exc, EOFError):
            raise TruncatedFile(f"file is truncated: the {fmt.upper()} image data is cut off") from exc
        raise CorruptFile(f"{fmt.upper()} file is corrupt and could not be decoded: {exc}") from exc
    if not frames.shape[0]:
        raise NoFrames(f"{fmt.upper()} file contains no frames")
    fps = _gif_fps(durations) if frames.shape[0] > 1 else None
    return frames, fps, meta
