"""Resource budgets of one decoded clip, and the frame stack that keeps decoding within them.

An upload of a few kilobytes can declare, or simply contain, gigabytes of pixels (300 black 4K
frames of H.264 are 60 kB). So every reader checks what the header or container says - frame
size, frame count, bit depth - against a :class:`Budget` before it decodes anything, and then
counts again frame by frame while decoding, because a header can lie: decoding stops at the
first frame over a limit. Frames go into a :class:`FrameStack`, never into a list that is
stacked afterwards, so a refused clip never held more than the budget.

The messages name the limit, the value found and the ``LUSWEB_*`` setting the web site reads
the limit from (the pure core only names it).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from patients.imaging.core.reader.clip import DecodedTooLarge, FrameTooLarge, TooManyFrames

MB = 1024 * 1024
FRAMES_SETTING = "LUSWEB_MAX_FRAMES"
PIXELS_SETTING = "LUSWEB_MAX_PIXELS_PER_FRAME"
DECODED_SETTING = "LUSWEB_MAX_DECODED_MB"


@dataclass(frozen=True)
class Budget:
    """What decoding one clip may produce.

    ``max_frames``: frames in the clip. ``max_pixels_per_frame``: samples in one decoded frame,
    width x height x samples per pixel (3 for colour, 1 for grey), the form in which a decoder
    holds a frame before the reader reduces it to grey. ``max_decoded_bytes``: bytes of decoded
    frames the reader holds for the whole clip: one per pixel of grey output, plus the native
    samples of >8-bit grey data kept until the clip's range is known.
    """

    max_frames: int = 2000
    max_pixels_per_frame: int = 1920 * 1080 * 3
    max_decoded_bytes: int = 256 * MB

    def __post_init__(self) -> None:
        for name in ("max_frames", "max_pixels_per_frame", "max_decoded_bytes"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"Budget.{name} must be a positive integer, not {value!r}")

    def check_frame(self, width: int, height: int, samples: int = 1) -> None:
        """Refuse a frame of more than ``max_pixels_per_frame`` samples."""
        found = int(width) * int(height) * int(samples)
        if found > self.max_pixels_per_frame:
            raise FrameTooLarge(
                f"a frame of the clip is {width} x {height} pixels x {samples} sample{'s' if samples != 1 else ''} = "
                f"{found:,} samples, over the "
                f"limit of {self.max_pixels_per_frame:,} samples per frame ({PIXELS_SETTING})"
            )

    def check_declared(self, *, frames: int | None, width: int, height: int, samples: int = 1,
                       bytes_per_pixel: int = 1) -> None:
        """Check what a header declares, before decoding: the frame size, then (when the header
        gives one) the frame count and the decoded size."""
        self.check_frame(width, height, samples)
        if not frames:
            return
        if frames > self.max_frames:
            raise TooManyFrames(
                f"the clip has {frames:,} frames (declared in its header), over the limit of "
                f"{self.max_frames:,} frames ({FRAMES_SETTING})"
            )
        decoded = frames * int(width) * int(height) * bytes_per_pixel
        if decoded > self.max_decoded_bytes:
            per_pixel = f", {bytes_per_pixel} bytes per pixel" if bytes_per_pixel != 1 else ""
            raise DecodedTooLarge(
                f"the clip would decode to {decoded / MB:,.1f} MB ({frames:,} frames of {width} x {height}"
                f"{per_pixel}), over the limit of {self._decoded_mb()} of decoded frames ({DECODED_SETTING})"
            )

    def frame_capacity(self, frame_bytes: int) -> int:
        """How many frames of ``frame_bytes`` each fit in the budget (at least 1: a first frame
        that alone exceeds the decoded budget is refused when it is appended)."""
        return max(1, min(self.max_frames, self.max_decoded_bytes // max(1, frame_bytes)))

    def refuse_more(self, stored: int, frame_bytes: int) -> None:
        """Raise for the frame after ``stored`` frames of ``frame_bytes``, found while decoding."""
        if stored >= self.max_frames:
            raise TooManyFrames(
                f"the clip has more than {self.max_frames:,} frames (decoding stopped at frame {stored + 1:,}), "
                f"over the limit of {self.max_frames:,} frames ({FRAMES_SETTING})"
            )
        raise DecodedTooLarge(
            f"the clip decodes to more than {self._decoded_mb()} (decoding stopped at frame {stored + 1:,}, "
            f"{(stored + 1) * frame_bytes / MB:,.1f} MB), over the limit of {self._decoded_mb()} of decoded frames "
            f"({DECODED_SETTING})"
        )

    def _decoded_mb(self) -> str:
        return f"{self.max_decoded_bytes / MB:,.0f} MB" if self.max_decoded_bytes >= MB else \
            f"{self.max_decoded_bytes:,} bytes"


class FrameStack:
    """Decoded frames appended one at a time into one array, within a :class:`Budget`.

    The array grows by doubling up to what the budget allows, in place: ``ndarray.resize`` is a
    ``realloc``, which for arrays this large remaps pages instead of copying them, so growing
    never holds the old and the new array at once, and a list of frames plus their stacked copy
    (twice the clip) never exists. ``expected`` (the declared frame count) sizes the first
    allocation. ``reserve_per_pixel`` is what the caller will add per pixel afterwards (the
    uint8 output of >8-bit data kept at its own depth), counted against the budget as well.
    """

    def __init__(self, budget: Budget, *, expected: int | None = None, reserve_per_pixel: int = 0) -> None:
        self.budget = budget
        self.count = 0
        self._expected = expected
        self._reserve = reserve_per_pixel
        self._buf: np.ndarray | None = None

    @property
    def frame_shape(self) -> tuple[int, ...] | None:
        return None if self._buf is None else tuple(self._buf.shape[1:])

    def append(self, frame: np.ndarray) -> None:
        """Store one frame (a copy); raises ``OverBudget`` instead of storing one frame too many,
        and ``ValueError`` for a frame whose shape or type differs from the first one's."""
        if self._buf is None:
            self._buf = self._allocate(frame)
        elif frame.shape != self._buf.shape[1:]:
            raise ValueError(f"frame {self.count + 1} is {frame.shape}, the first was {self._buf.shape[1:]}")
        if self.count == self._buf.shape[0]:
            self._grow()
        self._buf[self.count] = frame
        self.count += 1

    def _frame_bytes(self, shape: tuple[int, ...], itemsize: int) -> int:
        return int(np.prod(shape)) * (itemsize + self._reserve)

    def _allocate(self, frame: np.ndarray) -> np.ndarray:
        frame_bytes = self._frame_bytes(frame.shape, frame.dtype.itemsize)
        if frame_bytes > self.budget.max_decoded_bytes:
            self.budget.refuse_more(0, frame_bytes)
        first = min(self.budget.frame_capacity(frame_bytes), self._expected or 16)
        return np.empty((max(1, first), *frame.shape), dtype=frame.dtype)

    def _grow(self) -> None:
        buf = self._buf
        assert buf is not None
        frame_bytes = self._frame_bytes(buf.shape[1:], buf.dtype.itemsize)
        capacity = self.budget.frame_capacity(frame_bytes)
        if buf.shape[0] >= capacity:
            self.budget.refuse_more(buf.shape[0], frame_bytes)
        buf.resize((min(capacity, max(16, 2 * buf.shape[0])), *buf.shape[1:]), refcheck=False)

    def frames(self) -> np.ndarray:
        """The stacked frames ``[count, ...]`` (the spare capacity released in place); the stack is
        empty afterwards. A stack that never got a frame gives an empty uint8 ``[0, 0, 0]``."""
        buf, self._buf = self._buf, None
        if buf is None:
            return np.zeros((0, 0, 0), dtype=np.uint8)
        if buf.shape[0] != self.count:
            buf.resize((self.count, *buf.shape[1:]), refcheck=False)
        self.count = 0
        return buf
