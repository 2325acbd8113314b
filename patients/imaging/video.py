"""The clip viewer's video: the clip's cached frames as one browser-playable H.264 MP4.

The viewer used to fetch every frame as its own PNG (one request per frame). It now plays one
video per clip, made once from the frame cache (``ZoneClip.load_frames``) and kept through
Django's storage API beside the clip's other files, so any storage backend (local, S3) holds it
and every web process serves the same file. It is made lazily on the first request (a few
hundred milliseconds for a 150-frame clip) and removed with the clip (``signals``).

Frame ``i`` is presented at ``i / fps`` exactly (pts = i, time base = 1/fps), so the page maps
playback time to the frame index as ``floor(t * fps)``, the same index as the per-frame scores.

Two variants exist per clip, as for the frame images: the frames as stored (``full``) and, for
users who may not see identifying data in a study that keeps clips as sent, the frames with the
pixels outside the ultrasound sector blacked out (``masked``; see ``selectors._as_seen_by``).
"""
from __future__ import annotations

import logging
import posixpath
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from django.core.files.base import ContentFile

from patients.imaging import selectors
from patients.imaging.models import ZoneClip
from patients.imaging.tempfiles import temp_file
from patients.studies import permissions

logger = logging.getLogger(__name__)

#: Bumped when the encoding changes, so cached videos of the old recipe are not served.
RECIPE = "v1"
#: x264 quality (lower = better); 18 is visually lossless on grey ultrasound.
CRF = 18
CONTENT_TYPE = "video/mp4"
VARIANTS = ("full", "masked")


@dataclass(frozen=True)
class ClipVideo:
    """A stored viewer video: where it is, and what identifies its bytes (for ETag)."""

    name: str
    variant: str
    etag: str


def variant_for(*, clip: ZoneClip, user: Any) -> str:
    """Which video ``user`` may see: the stored frames, or the sector-masked ones."""
    if clip.deidentified or permissions.can_see_identifying(user, clip.exam.patient.study_id):
        return "full"
    return "masked"


def video_name(clip: ZoneClip, variant: str) -> str:
    """The storage name of the clip's video ``variant``, in the folder of its frame cache."""
    return posixpath.join(posixpath.dirname(str(clip.frames.name)), f"viewer-{variant}-{RECIPE}.mp4")


def video_names(clip: ZoneClip) -> list[str]:
    """Every viewer video the clip may have (for removal with the clip)."""
    return [video_name(clip, v) for v in VARIANTS] if clip.frames and clip.frames.name else []


def play_fps(clip: ZoneClip) -> float:
    """The rate the video plays at: the clip's own, or the viewer's default for files without one."""
    return float(clip.fps or selectors.DEFAULT_VIEWER_FPS)


def _even(frames: np.ndarray) -> np.ndarray:
    """Pad [T, H, W] to even H and W (4:2:0 chroma needs them) with black on the right and bottom."""
    _, rows, columns = frames.shape
    pad_r, pad_c = rows % 2, columns % 2
    if not (pad_r or pad_c):
        return frames
    return np.pad(frames, ((0, 0), (0, pad_r), (0, pad_c)))


def encode_mp4(frames: np.ndarray, fps: float) -> bytes:
    """Grey frames (uint8 [T, H, W]) as an H.264 (yuv420p, baseline-compatible high profile) MP4
    with its index at the front (``faststart``: playback starts before the whole file arrived)."""
    frames = _even(np.ascontiguousarray(frames, dtype=np.uint8))
    rate = Fraction(fps).limit_denominator(1001)
    # faststart rewrites the file once written: a real file, not memory.
    with temp_file("video", suffix=".mp4") as (path, _fd):
        _write(path, frames, rate)
        return path.read_bytes()


def _write(path: Path, frames: np.ndarray, rate: Fraction) -> None:
    import av  # lazy: only the viewer's video needs PyAV's encoder

    fps = float(rate)
    with av.open(str(path), mode="w", format="mp4", options={"movflags": "+faststart"}) as out:
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height = int(frames.shape[2]), int(frames.shape[1])
        stream.pix_fmt = "yuv420p"
        stream.time_base = 1 / rate
        # Every 2 s a keyframe: seeking (the slider, a click on the trace) decodes little.
        stream.options = {"crf": str(CRF), "preset": "veryfast", "g": str(max(1, round(2 * fps))),
                          "tune": "fastdecode"}
        for i, grey in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(grey, format="gray").reformat(format="yuv420p")
            frame.pts = i
            frame.time_base = 1 / rate
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def clip_video_for(*, clip: ZoneClip, user: Any) -> ClipVideo:
    """The clip's viewer video as ``user`` may see it, made and stored on first use.

    Raises ``selectors.FramesWithheld`` when the user may see none of the clip's pixels.
    """
    variant = variant_for(clip=clip, user=user)
    name = video_name(clip, variant)
    storage = clip.frames.storage
    if not storage.exists(name):
        frames = clip.load_frames()
        seen = selectors.frames_as_seen_by(clip=clip, user=user, frames=frames)
        data = encode_mp4(seen, play_fps(clip))
        _store(storage, name, data)
    return ClipVideo(name=name, variant=variant, etag=f'"{clip.sha256[:20]}-{clip.pk}-{variant}-{RECIPE}"')


def _store(storage: Any, name: str, data: bytes) -> None:
    """Save ``data`` as ``name``; a concurrent first request may have stored the same video meanwhile
    (storage then picks another name for ours: that copy is dropped)."""
    if storage.exists(name):
        return
    saved = storage.save(name, ContentFile(data))
    if saved != name:
        storage.delete(saved)
    logger.info("viewer video %s made (%d bytes)", name, len(data))
