from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from scoring.core.datasets import UNKNOWN, covid_blues_records, pocus_records
from scoring.core.nets import FINDINGS


def test_covid_blues_index(shared_data: Path) -> None:
    recs = covid_blues_records(shared_data / "covid-blues")
    assert len(recs) == 235
    assert len({r.patient for r in recs}) == 42
    assert Counter(r.score for r in recs) == {0: 78, 1: 72, 2: 55, 3: 30}
    assert all(r.zone in {"L1", "L2", "L3", "R1", "R2", "R3"} for r in recs)
    f = np.stack([r.findings_vector() for r in recs])
    assert f.shape == (235, len(FINDINGS))
    # trailing spaces in the CSV ("yes ") are parsed
    assert set(np.unique(f[:, FINDINGS.index("b_lines")])) == {0, 1}
    pi = FINDINGS.index("pleural_irregularity")
    assert all(r.findings_vector()[pi] == 0 for r in recs if r.score == 0 and "intact" not in r.name)
    eff = FINDINGS.index("effusion")
    assert f[:, eff].sum() == 1  # "massive pleural effusion" in one comment


def test_pocus_index(shared_data: Path) -> None:
    recs = pocus_records(shared_data / "pocus", scored_only=True)
    assert len(recs) >= 70
    assert all(0 <= r.score <= 3 and r.patient.startswith("pocus_") for r in recs)
    f = np.stack([r.findings_vector() for r in recs])
    assert (f[:, FINDINGS.index("consolidation")] != UNKNOWN).mean() > 0.8


def test_cached_views_decode_once_and_equal_two_cached_frames(tmp_path: Path, monkeypatch: Any) -> None:
    from patients.imaging.core.phantoms import PhantomSpec, render_phantom, write_mp4
    from scoring.core import datasets
    from scoring.core.preprocess import PreprocessConfig

    clip = tmp_path / "clip.mp4"
    write_mp4(render_phantom(PhantomSpec(n_frames=10, seed=3, burned_in_text=True)), str(clip))
    cfg = PreprocessConfig(size=112, intensity="p99")
    decoded: list[str] = []
    real = datasets.decode_frames

    def counting(path: Any) -> Any:
        decoded.append(str(path))
        return real(path)

    monkeypatch.setattr(datasets, "decode_frames", counting)
    monkeypatch.setattr(datasets, "CACHE_ROOT", tmp_path / "views")
    small, big = datasets.cached_views(clip, cfg, 224, max_frames=8)
    assert len(decoded) == 1 and small.shape == (8, 112, 112) and big.shape == (8, 224, 224)
    assert small.dtype == big.dtype == np.uint8 and small.max() > 0
    again = datasets.cached_views(clip, cfg, 224, max_frames=8)  # from the cache
    assert len(decoded) == 1 and all(np.array_equal(a, b) for a, b in zip(again, (small, big), strict=True))
    # Exactly what two separate cached_frames calls compute (fresh cache, two decodes).
    monkeypatch.setattr(datasets, "CACHE_ROOT", tmp_path / "frames")
    hcfg = PreprocessConfig(size=224, intensity="p99")
    assert np.array_equal(datasets.cached_frames(clip, cfg, 8), small)
    assert np.array_equal(datasets.cached_frames(clip, hcfg, 8), big)
    assert len(decoded) == 3
