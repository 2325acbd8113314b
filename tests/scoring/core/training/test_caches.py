"""The training caches: preprocessed frames (one decode and one sector for both canvases)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from patients.imaging.core.phantoms import PhantomSpec, render_phantom, write_mp4
from scoring.core.features.preprocess import PreprocessConfig
from scoring.core.training import caches


def test_cached_views_decode_once_and_equal_two_cached_frames(tmp_path: Path, monkeypatch: Any) -> None:
    clip = tmp_path / "clip.mp4"
    write_mp4(render_phantom(PhantomSpec(n_frames=10, seed=3, burned_in_text=True)), str(clip))
    cfg = PreprocessConfig(size=112, intensity="p99")
    decoded: list[str] = []
    real = caches.decode_frames

    def counting(path: Any) -> Any:
        decoded.append(str(path))
        return real(path)

    monkeypatch.setattr(caches, "decode_frames", counting)
    monkeypatch.setattr(caches, "CACHE_ROOT", tmp_path / "views")
    small, big = caches.cached_views(clip, cfg, 224, max_frames=8)
    assert len(decoded) == 1 and small.shape == (8, 112, 112) and big.shape == (8, 224, 224)
    assert small.dtype == big.dtype == np.uint8 and small.max() > 0
    again = caches.cached_views(clip, cfg, 224, max_frames=8)  # from the cache
    assert len(decoded) == 1 and all(np.array_equal(a, b) for a, b in zip(again, (small, big), strict=True))
    # Exactly what two separate cached_frames calls compute (fresh cache, two decodes).
    monkeypatch.setattr(caches, "CACHE_ROOT", tmp_path / "frames")
    hcfg = PreprocessConfig(size=224, intensity="p99")
    assert np.array_equal(caches.cached_frames(clip, cfg, 8), small)
    assert np.array_equal(caches.cached_frames(clip, hcfg, 8), big)
    assert len(decoded) == 3
