"""On-disk caches of the training data: preprocessed frames and clip features.

Decoded and preprocessed frames are cached as uint8 ``.npy`` under ``~/.cache/lusweb/frames/``
and clip features as ``.npz`` under ``~/.cache/lusweb/features/``, keyed by the file's path,
size and mtime (frames) or its content (features) and by the preprocessing / feature
parameters, so experiments are cheap.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from scoring.core.features.featurizer import Featurizer
from scoring.core.features.preprocess import (
    PreprocessConfig,
    apply_geometry,
    geometry_for,
    normalise_intensity,
    preprocess_clip,
    to_grey,
)
from scoring.core.features.recipe import Recipe
from scoring.core.models.lite0 import sha256_file
from scoring.core.training.datasets import ClipRecord, decode_frames

CACHE_ROOT = Path(os.environ.get("LUSWEB_CACHE", Path.home() / ".cache" / "lusweb"))
#: Bump when features or the bundle layout change.
FEATURE_VERSION = "feat-2"


def _key(path: str | Path, cfg: PreprocessConfig, extra: str = "") -> str:
    st = os.stat(path)
    raw = json.dumps([str(Path(path).resolve()), st.st_size, int(st.st_mtime), cfg.to_dict(), extra])
    return hashlib.sha1(raw.encode()).hexdigest()[:20]


def _cache_file(path: str | Path, cfg: PreprocessConfig, max_frames: int) -> Path:
    d = CACHE_ROOT / "frames"
    d.mkdir(parents=True, exist_ok=True)
    return d / f"{_key(path, cfg, str(max_frames))}.npy"


def _decode_subsampled(path: str | Path, max_frames: int) -> np.ndarray:
    raw, _ = decode_frames(path)
    if max_frames and raw.shape[0] > max_frames:
        raw = raw[np.linspace(0, raw.shape[0] - 1, max_frames).round().astype(int)]
    return raw


def _save(f: Path, u8: np.ndarray) -> None:
    tmp = f.with_suffix(".tmp.npy")
    np.save(tmp, u8)
    os.replace(tmp, f)  # a concurrent reader never sees half a file


def cached_frames(path: str | Path, cfg: PreprocessConfig, max_frames: int = 0) -> np.ndarray:
    """Preprocessed frames as uint8 [T,size,size] (from the cache or computed and cached).

    ``max_frames`` > 0 subsamples long clips uniformly (POCUS has clips of 1000+ frames).
    """
    f = _cache_file(path, cfg, max_frames)
    if f.exists():
        return np.load(f)
    x, _ = preprocess_clip(_decode_subsampled(path, max_frames), cfg)
    u8 = np.round(x * 255).astype(np.uint8)
    _save(f, u8)
    return u8


def cached_views(path: str | Path, cfg: PreprocessConfig, hires_size: int,
                 max_frames: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """:func:`cached_frames` on ``cfg.size`` and on a ``hires_size`` canvas, decoding the clip and
    finding its sector once for both (the sector does not depend on the canvas size).

    The two arrays are exactly what two :func:`cached_frames` calls return, and share their
    cache files.
    """
    hcfg = PreprocessConfig(**{**cfg.to_dict(), "size": hires_size})  # type: ignore[arg-type]
    files = (_cache_file(path, cfg, max_frames), _cache_file(path, hcfg, max_frames))
    if all(f.exists() for f in files):
        return np.load(files[0]), np.load(files[1])
    grey = to_grey(_decode_subsampled(path, max_frames))
    # As preprocess.model_input_views: the small view is the full pipeline, the large one
    # reuses its sector mask.
    x, geom = preprocess_clip(grey, cfg)
    xh = apply_geometry(grey, geometry_for(geom.mask, hires_size))
    out = []
    for f, v in zip(files, (x, xh), strict=True):
        u8 = np.round(v * 255).astype(np.uint8)
        _save(f, u8)
        out.append(u8)
    return out[0], out[1]


def content_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, memoised per (path, size, mtime): hashing a clip costs
    milliseconds, but a training run asks for every clip several times."""
    st = os.stat(path)
    key = (os.path.abspath(path), st.st_size, st.st_mtime_ns)
    if key not in _SHA256:
        _SHA256[key] = sha256_file(path)
    return _SHA256[key]


_SHA256: dict[tuple[str, int, int], str] = {}


def feature_key(recipe: Recipe, max_frames: int) -> str:
    """What a clip's cached features depend on besides the clip's bytes (the cache key's recipe part)."""
    return json.dumps([FEATURE_VERSION, recipe.preprocess().to_dict(), list(recipe.taps), recipe.hand,
                       recipe.summary_images, max_frames, recipe.backbone_tag,
                       recipe.hires_size, recipe.hires_frames, list(recipe.hires_taps)])


def featurize_records(records: Sequence[ClipRecord], recipe: Recipe, fz: Featurizer | None = None,
                      max_frames: int = 120, log: Callable[[str], None] | None = None) -> list[dict[str, np.ndarray]]:
    """Features of labelled clips, cached in ``~/.cache/lusweb/features`` per clip and recipe."""
    cfg = recipe.preprocess()
    key_recipe = feature_key(recipe, max_frames)
    d = CACHE_ROOT / "features"
    d.mkdir(parents=True, exist_ok=True)
    out: list[dict[str, np.ndarray]] = []
    t0 = time.time()
    for i, r in enumerate(records):
        # Keyed by the file's content, not its path: a clip stored by LUSWeb byte for byte (an
        # import without de-identification) shares the features of the data set's file, so a
        # site model and the training command read the same features of the same clip.
        k = hashlib.sha1(json.dumps([key_recipe, content_sha256(r.path)]).encode())
        f = d / f"{k.hexdigest()[:24]}.npz"
        if f.exists():
            z = np.load(f)
            out.append({"frame": z["frame"], "summary": z["summary"], "hires": z["hires"]})
            continue
        if fz is None:
            fz = Featurizer(recipe)
        views = None
        if recipe.hires_size:
            # One decode and one sector detection for both canvases.
            u8, u8h = cached_views(r.path, cfg, recipe.hires_size, max_frames)
            views = [normalise_intensity(u8h.astype(np.float32) / 255.0, cfg.intensity)]
        else:
            u8 = cached_frames(r.path, cfg, max_frames)
        x = normalise_intensity(u8.astype(np.float32) / 255.0, cfg.intensity)
        feat = fz.clips([x], views)[0]
        np.savez(f, frame=feat["frame"], summary=feat["summary"], hires=feat["hires"])
        out.append(feat)
        if log and (i + 1) % 25 == 0:
            log(f"featurised {i + 1}/{len(records)} clips ({time.time() - t0:.0f}s)")
    return out
