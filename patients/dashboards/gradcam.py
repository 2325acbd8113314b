"""Grad-CAM++ overlays for the clip viewer, computed on demand and cached in the media storage.

The cache is ``gradcam/<model version>/<clip id>-<clip sha256>/<frame>.png`` in the default
storage (the same storage API as the clips, so a deployment on object storage keeps its overlays
there too): the clip bytes and the model fix the map, so a cached overlay never goes stale.
"""
from __future__ import annotations

import io
import re

import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from patients.imaging.models import ZoneClip
from scoring import runtime
from scoring.models import ModelVersion
from scoring.selectors import current_clip_score

# Jet-like ramp (blue -> cyan -> green -> yellow -> red), the usual Grad-CAM palette.
_ANCHORS = np.array([[0, 0, 143], [0, 0, 255], [0, 255, 255], [0, 255, 0], [255, 255, 0], [255, 0, 0],
                     [128, 0, 0]], dtype=np.float64)
_MAX_ALPHA = 0.6


class GradcamUnavailable(Exception):
    """No scorer can be loaded here (missing dependency or weights, no model version)."""


def _model_version_for(clip: ZoneClip) -> ModelVersion:
    """The model of the clip's current score, else the active model."""
    score = current_clip_score(clip=clip)
    if score is not None:
        return score.model_version
    active = ModelVersion.objects.filter(is_active=True).first()
    if active is None:
        raise GradcamUnavailable("No model version is registered, so no Grad-CAM++ map can be computed.")
    return active


def heat_rgba(cam: np.ndarray) -> np.ndarray:
    """uint8 RGBA [H, W, 4]: a jet colour ramp, alpha proportional to the map (0 = transparent)."""
    m = np.clip(np.nan_to_num(np.asarray(cam, dtype=np.float64)), 0.0, 1.0)
    pos = m * (len(_ANCHORS) - 1)
    lo = np.floor(pos).astype(int).clip(0, len(_ANCHORS) - 2)
    frac = (pos - lo)[..., None]
    rgb = _ANCHORS[lo] * (1 - frac) + _ANCHORS[lo + 1] * frac
    alpha = (m * _MAX_ALPHA * 255)[..., None]
    return np.concatenate([rgb, alpha], axis=-1).round().astype(np.uint8)


def cache_name(clip: ZoneClip, version: str, index: int) -> str:
    """The overlay's name in the default storage."""
    # Per clip, not per upload hash: the same bytes in two studies are two clips (redacted or
    # not), and one study's overlay is never served for another's.
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", version)[:100] or "model"
    return f"gradcam/{safe}/{clip.pk}-{clip.sha256[:16]}/{index}.png"


def gradcam_png(clip: ZoneClip, index: int) -> bytes:
    """The overlay PNG of frame ``index`` (``IndexError`` outside the clip; ``GradcamUnavailable``
    when no scorer can run here)."""
    count = clip.frame_count or 0  # a ready clip (the only kind pages show) always has its frames
    if not 0 <= index < count:
        raise IndexError(f"frame {index} is outside 0-{count - 1}")
    mv = _model_version_for(clip)
    name = cache_name(clip, mv.version, index)
    if default_storage.exists(name):
        with default_storage.open(name, "rb") as fh:
            cached: bytes = fh.read()
        return cached
    try:
        scorer = runtime.get_scorer(mv.weights)
    except ImportError as exc:
        raise GradcamUnavailable(f"The scoring model cannot be loaded on this server ({exc}).") from exc
    except (OSError, RuntimeError) as exc:  # missing or mismatched weights file
        raise GradcamUnavailable(f"The weights of model {mv.version} cannot be loaded ({exc}).") from exc
    frames = clip.load_frames()
    cam = scorer.gradcam(frames, [index])[0]
    from PIL import Image  # lazy: only overlays need Pillow

    buf = io.BytesIO()
    Image.fromarray(heat_rgba(cam)).save(buf, format="PNG")
    data = buf.getvalue()
    # The storage writes a new file under the name or, when a concurrent request got there first,
    # under another one: that copy is dropped (both are the same map).
    saved = default_storage.save(name, ContentFile(data))
    if saved != name:
        default_storage.delete(saved)
    return data
