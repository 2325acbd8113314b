"""Clip reads, always scoped to what the user may see (pixels included)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from django.core.cache import cache
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from patients.imaging.core.sector import find_sector
from patients.imaging.models import ClipStatus, ZoneClip
from patients.records.models import Exam
from patients.studies import permissions


def clip_list(*, user: Any, exam: Exam | int | None = None, any_status: bool = False) -> QuerySet[ZoneClip]:
    """The ready clips the user may see (with ``any_status``, also uploads being checked and failed ones)."""
    base = ZoneClip.all_objects if any_status else ZoneClip.objects
    qs = base.select_related("exam", "exam__patient", "exam__patient__study")
    if not user.is_superuser:
        qs = qs.filter(exam__patient__study__memberships__user=user)
    if exam is not None:
        qs = qs.filter(exam=exam)
    return qs


def clip_for(*, user: Any, pk: int, any_status: bool = False) -> tuple[ZoneClip, str]:
    """The ready clip (with ``any_status`` also one being checked or failed) with its exam,
    patient and study, and the user's role; 404 for outsiders too."""
    base = ZoneClip.all_objects if any_status else ZoneClip.objects
    clip = get_object_or_404(base.select_related("exam__patient__study"), pk=pk)
    return clip, permissions.role_or_404(user, clip.exam.patient.study_id)


def uploads_in_check(*, exam: Exam) -> list[ZoneClip]:
    """The exam's uploads not (yet) clips: being checked, or failed with their error; by zone."""
    return list(ZoneClip.all_objects.filter(exam=exam).exclude(status=ClipStatus.READY).order_by("zone", "-pk"))


class FramesWithheld(Exception):
    """The user may not see this clip's pixels (the message says why)."""


def _sector_mask(clip: ZoneClip, frames: Any) -> Any:
    """The clip's ultrasound sector (bool [H, W]), or None when none is found; cached per clip."""
    key = f"lusweb:sector:{clip.pk}:{clip.sha256}"
    hit = cache.get(key)
    if hit is not None:
        found, shape, packed = hit
        return np.unpackbits(packed)[: shape[0] * shape[1]].reshape(shape).astype(bool) if found else None
    sector = find_sector(frames)
    mask = sector.mask
    cache.set(key, (sector.found, mask.shape, np.packbits(mask)), timeout=None)
    return mask if sector.found else None


WITHHELD = ("This study keeps clips as sent (not de-identified) and no ultrasound sector was found in this clip "
            "to hide the burned-in text around it, so its images are shown to clinicians and study admins only.")


def _as_seen_by(clip: ZoneClip, user: Any, frames: Any, picked: Any) -> Any:
    """``picked`` (frames of ``frames``, [..., H, W]) as ``user`` may see them.

    Clips of a study that keeps uploads as sent (no de-identification) still carry burned-in
    text - names, dates, hospital - outside the ultrasound sector. Users who may not see
    identifying data get those pixels blacked out (the sector itself is untouched, as in
    de-identification at ingest); when no sector can be found the frames are withheld from them
    (:class:`FramesWithheld`) rather than shown with whatever text they carry.
    """
    if clip.deidentified or permissions.can_see_identifying(user, clip.exam.patient.study_id):
        return picked
    mask = _sector_mask(clip, frames)
    if mask is None:
        raise FramesWithheld(WITHHELD)
    out = picked.copy()
    out[..., ~mask] = 0
    return out


def frames_as_seen_by(*, clip: ZoneClip, user: Any, frames: Any) -> Any:
    """All of the clip's ``frames`` (uint8 [T, H, W]) as ``user`` may see them (see :func:`_as_seen_by`)."""
    return _as_seen_by(clip, user, frames, frames)


def clip_frame_for(*, clip: ZoneClip, user: Any, index: int) -> Any:
    """Frame ``index`` of the clip (uint8 [H, W]) as ``user`` may see it; ``IndexError`` outside the clip."""
    frames = clip.load_frames()
    if not 0 <= index < frames.shape[0]:
        raise IndexError(f"frame {index} is outside 0-{frames.shape[0] - 1}")
    return _as_seen_by(clip, user, frames, frames[index])


STRIP_MAX_FRAMES = 100
STRIP_MAX_WIDTH = 256
DEFAULT_FPS = 25.0
#: The viewer plays a clip without a frame rate (a still image, some DICOMs) at this rate.
DEFAULT_VIEWER_FPS = 20.0


@dataclass(frozen=True)
class ClipStrip:
    """Frames of a clip stacked vertically (uint8 [count * height, width]) for a one-request player."""
    image: Any
    count: int            # frames in the strip
    height: int           # of one frame in the strip
    width: int
    fps: float            # the clip's frame rate (DEFAULT_FPS when the file has none)
    clip_frames: int      # frames in the clip; the strip plays in real time at fps * count / clip_frames


def strip_indices(total: int, limit: int = STRIP_MAX_FRAMES) -> list[int]:
    """At most ``limit`` frame indices spread evenly over ``total`` frames (all of them when they fit)."""
    if total <= limit:
        return list(range(total))
    return [i * total // limit for i in range(limit)]


def clip_strip_for(*, clip: ZoneClip, user: Any, max_frames: int = STRIP_MAX_FRAMES,
                   max_width: int = STRIP_MAX_WIDTH) -> ClipStrip:
    """The clip's frame strip as ``user`` may see it (masking as :func:`clip_frame_for`): at most
    ``max_frames`` frames sampled evenly, each downscaled to at most ``max_width`` px wide."""
    from PIL import Image  # lazy: only frame images need Pillow

    frames = clip.load_frames()
    picked = _as_seen_by(clip, user, frames, frames[strip_indices(frames.shape[0], max_frames)])
    n, rows, columns = picked.shape
    width = min(max_width, columns)
    height = max(1, round(rows * width / columns))
    if (width, height) != (columns, rows):
        picked = np.stack([np.asarray(Image.fromarray(f).resize((width, height), Image.Resampling.BILINEAR))
                           for f in picked])
    return ClipStrip(image=picked.reshape(n * height, width), count=n, height=height,
                     width=width, fps=float(clip.fps or DEFAULT_FPS), clip_frames=int(frames.shape[0]))
