"""The viewer's heat map: where the model that produced the clip score found its evidence.

The clip score shown is the clip model's (the default weights: clip heads on a 224-px view of
``hires_frames`` evenly spaced frames and three summary images of the whole clip), so the map is
that model's, for that score (:mod:`scoring.core.inference.gradcam`), on the frames it read. One
computation gives every read frame's map; they are cached in the default storage (the same
storage API as the clips, so a deployment on object storage keeps its overlays there too) as
``gradcam/<CACHE_FORMAT>/<model version>/<clip id>-<clip sha256>/s<score>-<frame>.png`` with
``s<score>.json`` beside them: the clip bytes, the model and the explained score fix the map,
so a cached overlay never goes stale. ``CACHE_FORMAT`` changes with the method, so overlays of
the frame head (the old ``gradcam/<version>/...`` names) are never served as the clip model's.
"""
from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from patients.imaging.models import ZoneClip
from scoring import runtime
from scoring.core.features.recipe import Recipe
from scoring.core.inference.gradcam import CLIP_HEADS, explained_model, read_frames, score_members
from scoring.models import ClipScore, ModelVersion
from scoring.selectors import current_clip_score
from scoring.study_model import NETWORK_LABELS, network_arch

#: Bumped whenever the map's method changes (clip-model-1: the clip heads' gradient x activation).
CACHE_FORMAT = "clip-model-1"

# Jet-like ramp (blue -> cyan -> green -> yellow -> red), the usual heat-map palette.
_ANCHORS = np.array([[0, 0, 143], [0, 0, 255], [0, 255, 255], [0, 255, 0], [255, 255, 0], [255, 0, 0],
                     [128, 0, 0]], dtype=np.float64)
_MAX_ALPHA = 0.6


class GradcamUnavailable(Exception):
    """No scorer can be loaded here (missing dependency or weights, no model version)."""


class FrameNotRead(LookupError):
    """The model that produced the clip score did not read this frame, so it has no map."""


@dataclass(frozen=True)
class Overlay:
    """One frame's heat map and what it explains."""

    png: bytes
    score: int  # the clip score the map explains
    read_frames: list[int]  # the frames the model read (0-based)
    summary_share: float | None  # share of the evidence in the summary images (clip heads)


def _explained(clip: ZoneClip) -> tuple[ModelVersion, ClipScore | None]:
    """The model of the clip's current score (and that score), else the active model."""
    score = current_clip_score(clip=clip)
    if score is not None:
        return score.model_version, score
    active = ModelVersion.objects.filter(is_active=True).first()
    if active is None:
        raise GradcamUnavailable("No model version is registered, so no heat map can be computed.")
    return active, None


NETWORK = "network"
#: The networks with a heat map (``scoring.core.inference.net_scorer.mcrfnet_attribution``).
MAPPED_NETWORKS = frozenset({"mcrfnet"})


def _recipe(mv: ModelVersion) -> Recipe | None:
    """The recipe the version's weights recorded (None: not recorded, e.g. a row without metadata,
    or a network, whose recipe is of another kind)."""
    if network_arch(mv) is not None:
        return None
    raw = (mv.metadata or {}).get("recipe")
    return Recipe.from_dict(raw) if isinstance(raw, dict) else None


def explanation(*, clip: ZoneClip, score: ClipScore | None) -> dict[str, Any]:
    """What the viewer says about the model behind ``score`` (the clip score it shows).

    ``model``: ``clip-heads``, ``frame-head``, ``network`` (MCRFNet, Reg-STN or the cascade:
    ``arch``, ``arch_label``, ``heatmap`` (MCRFNet only), the cascade's ``members`` in percent) or None (the weights do not record their recipe, or
    their clip model has no map); ``read_frames``: the frames that model read (0-based);
    ``hires_frames`` / ``size`` / ``members``: how the clip heads read the clip; ``probs_pct``: the
    clip probabilities of scores 0-3 in percent.
    """
    recipe = _recipe(score.model_version) if score is not None else None
    out: dict[str, Any] = {"model": None, "read_frames": [], "hires_frames": None, "size": None, "members": [],
                           "aggregator": recipe.aggregator if recipe else None,
                           # The clip probabilities as the page prints them (percent, one decimal).
                           "probs_pct": [round(100 * float(v), 1) for v in score.probs] if score is not None else []}
    arch = network_arch(score.model_version) if score is not None else None
    if arch is not None and score is not None:
        # A network scores every frame itself (the curve is its own) and has no heat map here.
        out.update(model=NETWORK, arch=arch, arch_label=NETWORK_LABELS[arch], aggregator=score.aggregator,
                   heatmap=arch in MAPPED_NETWORKS,
                   read_frames=list(range(clip.frame_count or 0)) if arch in MAPPED_NETWORKS else [],
                   members={k: [round(100 * float(v), 1) for v in p] for k, p in
                            dict((score.extra or {}).get("members") or {}).items()})
        return out
    if recipe is None or not _has_map(recipe):
        return out
    model = explained_model(recipe)
    out.update(model=model, read_frames=read_frames(recipe, clip.frame_count or 0))
    if model == CLIP_HEADS:
        out.update(hires_frames=recipe.hires_frames, size=recipe.hires_size, members=list(score_members(recipe)))
    return out


def heat_rgba(cam: np.ndarray) -> np.ndarray:
    """uint8 RGBA [H, W, 4]: a jet colour ramp, alpha proportional to the map (0 = transparent)."""
    m = np.clip(np.nan_to_num(np.asarray(cam, dtype=np.float64)), 0.0, 1.0)
    pos = m * (len(_ANCHORS) - 1)
    lo = np.floor(pos).astype(int).clip(0, len(_ANCHORS) - 2)
    frac = (pos - lo)[..., None]
    rgb = _ANCHORS[lo] * (1 - frac) + _ANCHORS[lo + 1] * frac
    alpha = (m * _MAX_ALPHA * 255)[..., None]
    return np.concatenate([rgb, alpha], axis=-1).round().astype(np.uint8)


def cache_name(clip: ZoneClip, version: str, score: int | None, index: int | None) -> str:
    """The overlay's name in the default storage (``index`` None: the maps' description)."""
    # Per clip, not per upload hash: the same bytes in two studies are two clips (redacted or
    # not), and one study's overlay is never served for another's.
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", version)[:100] or "model"
    stem = f"gradcam/{CACHE_FORMAT}/{safe}/{clip.pk}-{clip.sha256[:16]}/s{'own' if score is None else score}"
    return f"{stem}.json" if index is None else f"{stem}-{index}.png"


def _save(name: str, data: bytes) -> None:
    # The storage writes a new file under the name or, when a concurrent request got there first,
    # under another one: that copy is dropped (both are the same map).
    saved = default_storage.save(name, ContentFile(data))
    if saved != name:
        default_storage.delete(saved)


def _read(name: str) -> bytes:
    with default_storage.open(name, "rb") as fh:
        data: bytes = fh.read()
    return data


def _compute(clip: ZoneClip, mv: ModelVersion, target: int | None) -> dict[str, Any]:
    """Every read frame's map, written to the cache; returns the description (``s<score>.json``)."""
    try:
        scorer = runtime.get_scorer(mv.weights)
    except ImportError as exc:
        raise GradcamUnavailable(f"The scoring model cannot be loaded on this server ({exc}).") from exc
    except (OSError, RuntimeError) as exc:  # missing or mismatched weights file
        raise GradcamUnavailable(f"The weights of model {mv.version} cannot be loaded ({exc}).") from exc
    try:
        result = scorer.gradcam(clip.load_frames(), target)
    except ValueError as exc:  # a clip model without a heat map
        raise GradcamUnavailable(str(exc)) from exc
    from PIL import Image  # lazy: only overlays need Pillow

    for i, cam in zip(result.indices, result.maps, strict=True):
        buf = io.BytesIO()
        Image.fromarray(heat_rgba(cam)).save(buf, format="PNG")
        _save(cache_name(clip, mv.version, target, i), buf.getvalue())
    meta = {"model": result.model, "score": result.target, "read_frames": list(result.indices),
            "members": list(result.members), "logit": result.logit, "summary_share": result.summary_share}
    _save(cache_name(clip, mv.version, target, None), json.dumps(meta).encode())
    return meta


def gradcam_png(clip: ZoneClip, index: int) -> Overlay:
    """The heat map of frame ``index`` for the clip score shown (``IndexError`` outside the clip,
    ``FrameNotRead`` for a frame the model did not read, ``GradcamUnavailable`` when no scorer
    can run here)."""
    count = clip.frame_count or 0  # a ready clip (the only kind pages show) always has its frames
    if not 0 <= index < count:
        raise IndexError(f"frame {index} is outside 0-{count - 1}")
    mv, score = _explained(clip)
    target = score.score if score is not None else None
    arch = network_arch(mv)
    if arch is not None and arch not in MAPPED_NETWORKS:  # answered without loading the network
        raise GradcamUnavailable(f"{NETWORK_LABELS[arch]} has no heat map in LUSWeb; the two crops Reg-STN read are "
                                 "drawn on every frame instead.")
    known = _recipe(mv)
    if known is not None and _has_map(known) and index not in read_frames(known, count):
        raise FrameNotRead(_not_read(index, read_frames(known, count)))  # answered without the model
    meta_name, png_name = cache_name(clip, mv.version, target, None), cache_name(clip, mv.version, target, index)
    meta = json.loads(_read(meta_name)) if default_storage.exists(meta_name) else _compute(clip, mv, target)
    if index not in meta["read_frames"]:
        raise FrameNotRead(_not_read(index, meta["read_frames"]))
    return Overlay(_read(png_name), int(meta["score"]), list(meta["read_frames"]), meta.get("summary_share"))


def _has_map(recipe: Recipe) -> bool:
    try:
        explained_model(recipe)
    except ValueError:
        return False
    return True


def _not_read(index: int, frames: list[int]) -> str:
    shown = ", ".join(str(i + 1) for i in frames)
    return (f"The clip model did not read frame {index + 1}; it read frame{'s' if len(frames) > 1 else ''} {shown} "
            "(and the summary images of the whole clip), so only those have a heat map.")
