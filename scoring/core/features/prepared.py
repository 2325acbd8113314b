"""A clip prepared for the CNN: made once, stored, and read by every later scoring of the clip.

Preparing a clip (sector, both canvases, intensity, the hires pass's summary images, the
hand-crafted features) costs a 12-zone exam about as much CPU as the CNN itself. A clip does not
change once stored, so the worker prepares it once (while the exam's other zones upload, or the
first time an exam job reads it) and keeps the result beside the clip's frame cache; the exam's
scoring job then reads the prepared clips and runs only the CNN and the heads.

What is stored reproduces the freshly prepared clip bit for bit (a test holds it): the model
input as its uint8 steps before the per-clip intensity normalisation (redone on reading, a few
milliseconds), the images the hires pass reads (float32, ``hires_frames`` frames and three
summary images) and the hand-crafted features. A prepared clip is bound to its preparation by
:func:`prepare_key` (the preprocessing parameters of the weights, the hires view, the
hand-crafted features and :data:`PREPARED_VERSION`); a file of another key, another format or a
damaged file reads as ``None`` and the clip is prepared again.
"""
from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from typing import IO, Any

import numpy as np

from scoring.core.features.featurizer import hires_images
from scoring.core.features.handcrafted import HAND_NAMES, handcrafted_features
from scoring.core.features.preprocess import (
    PreprocessConfig,
    dequantise,
    model_input_steps,
    normalise_intensity,
)
from scoring.core.features.recipe import Recipe

#: Bump when what a prepared clip holds changes (the hand-crafted features' code included: their
#: names are in the key, their arithmetic is not).
PREPARED_VERSION = "prepared-1"
PREPARED_FORMAT = "lusweb-prepared-1"


@dataclass(frozen=True)
class Prepared:
    """One clip ready for the CNN.

    ``steps``: uint8 [T,S,S], the model input before the intensity normalisation; ``x``: the model
    input float32 [T,S,S]; ``hires_images``: float32 [k+3,H,H] that the clip heads' pass reads
    (None without a hires view); ``hand``: float32 [T,F] hand-crafted features (None when the
    recipe has none); ``key``: :func:`prepare_key` of the preparation that made it.
    """

    key: str
    steps: np.ndarray
    x: np.ndarray
    hires_images: np.ndarray | None
    hand: np.ndarray | None


def prepare_key(recipe: Recipe, cfg: PreprocessConfig) -> str:
    """What a prepared clip depends on, as a short hex digest (part of its stored name)."""
    spec = {"version": PREPARED_VERSION, "preprocess": cfg.to_dict(), "hires_size": recipe.hires_size,
            "hires_frames": recipe.hires_frames, "hand": list(HAND_NAMES) if recipe.hand else []}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def prepare_clip(frames: np.ndarray, recipe: Recipe, cfg: PreprocessConfig) -> Prepared:
    """Prepare one clip (uint8 [T,H,W] or RGB) for the scorer of ``recipe``."""
    steps, _geom, xh = model_input_steps(np.asarray(frames), cfg, recipe.hires_size)
    x = normalise_intensity(dequantise(steps), cfg.intensity)
    images = hires_images(xh, recipe.hires_frames) if recipe.hires_size and xh is not None else None
    hand = handcrafted_features(x) if recipe.hand else None
    return Prepared(prepare_key(recipe, cfg), steps, x, images, hand)


def prepared_bytes(prepared: Prepared) -> bytes:
    """The stored file of a prepared clip (an uncompressed ``.npz``: read at memory speed)."""
    arrays: dict[str, Any] = {"format": np.array(PREPARED_FORMAT), "key": np.array(prepared.key), "steps": prepared.steps}
    if prepared.hires_images is not None:
        arrays["hires_images"] = np.ascontiguousarray(prepared.hires_images, np.float32)
    if prepared.hand is not None:
        arrays["hand"] = np.ascontiguousarray(prepared.hand, np.float32)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def prepared_read(fh: IO[bytes] | Any, key: str, cfg: PreprocessConfig) -> Prepared | None:
    """The prepared clip stored in ``fh``, or None when it was prepared otherwise (another
    ``key``) or the file is not a whole prepared clip (damaged, truncated, another format)."""
    try:
        with np.load(fh, allow_pickle=False) as data:
            if str(data["format"]) != PREPARED_FORMAT or str(data["key"]) != key:
                return None
            steps = np.asarray(data["steps"])
            images = np.asarray(data["hires_images"]) if "hires_images" in data.files else None
            hand = np.asarray(data["hand"]) if "hand" in data.files else None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    if steps.dtype != np.uint8 or steps.ndim != 3:
        return None
    if hand is not None and len(hand) != len(steps):
        return None
    return Prepared(key, steps, normalise_intensity(dequantise(steps), cfg.intensity), images, hand)
