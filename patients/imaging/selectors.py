"""Clip reads, always scoped to what the user may see (pixels included)."""
from __future__ import annotations

from typing import Any

import numpy as np
from django.core.cache import cache
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from patients.imaging.core.sector import find_sector
from patients.imaging.models import ZoneClip
from patients.records.models import Exam
from patients.studies import permissions


def clip_list(*, user: Any, exam: Exam | int | None = None) -> QuerySet[ZoneClip]:
    qs = ZoneClip.objects.select_related("exam", "exam__patient", "exam__patient__study")
    if not user.is_superuser:
        qs = qs.filter(exam__patient__study__memberships__user=user)
    if exam is not None:
        qs = qs.filter(exam=exam)
    return qs


def clip_for(*, user: Any, pk: int) -> tuple[ZoneClip, str]:
    """The clip (with its exam, patient and study) and the user's role; 404 for outsiders too."""
    clip = get_object_or_404(ZoneClip.objects.select_related("exam__patient__study"), pk=pk)
    return clip, permissions.role_or_404(user, clip.exam.patient.study_id)


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


def clip_frame_for(*, clip: ZoneClip, user: Any, index: int) -> Any:
    """Frame ``index`` of the clip (uint8 [H, W]) as ``user`` may see it; ``IndexError`` outside the clip.

    Clips of a study that keeps uploads as sent (no de-identification) still carry burned-in
    text - names, dates, hospital - outside the ultrasound sector. Users who may not see
    identifying data get those pixels blacked out (the sector itself is untouched, as in
    de-identification at ingest); when no sector can be found the frames are withheld from them
    (:class:`FramesWithheld`) rather than shown with whatever text they carry.
    """
    frames = clip.load_frames()
    if not 0 <= index < frames.shape[0]:
        raise IndexError(f"frame {index} is outside 0-{frames.shape[0] - 1}")
    frame = frames[index]
    if clip.deidentified or permissions.can_see_identifying(user, clip.exam.patient.study_id):
        return frame
    mask = _sector_mask(clip, frames)
    if mask is None:
        raise FramesWithheld(
            "This study keeps clips as sent (not de-identified) and no ultrasound sector was found in this clip "
            "to hide the burned-in text around it, so its images are shown to clinicians and study admins only.")
    out = frame.copy()
    out[~mask] = 0
    return out
