"""Frames per second of the default scorer per device (``make bench``), and what reduced precision
does to the scores.

For each device this machine has (the CPU; CUDA when torch sees it) in float32 and in float16
(``LUSWEB_HALF_PRECISION``, autocast), the scorer scores the same clips (real COVID-BLUES clips
when ``../shared/data`` exists, otherwise phantoms) the way the worker does (``Scorer.to``:
backbone on the device, inputs moved batch by batch). The worker never runs float16 on the CPU
(slow there); the CPU float16 row measures what float16 rounding does to the scores on a
machine without a GPU. Reported: frames/s, the ratio to the CPU in float32, and the largest
difference of any frame and clip probability from the CPU float32 scores. Exits 1 when float16
moves them beyond ``scoring.core.device``'s tolerances (``--no-fail`` to not): those are the
promise of the setting.

    python -m benchmarks.bench_device [--clips 4] [--frames 32]
"""
from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
import torch

from benchmarks.bench_scoring import _source_clips
from scoring.core.device import HALF_PRECISION_CLIP_TOLERANCE, HALF_PRECISION_FRAME_TOLERANCE
from scoring.core.inference.scorer import ClipResult, Scorer, load_scorer


def _score(scorer: Scorer, clips: list[np.ndarray], reps: int) -> tuple[float, list[ClipResult]]:
    """Frames/s (best of ``reps`` after one warm-up pass) and the results."""
    results = scorer.score_clips(clips)
    if scorer.device.type == "cuda":
        torch.cuda.synchronize()
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        results = scorer.score_clips(clips)
        if scorer.device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return sum(len(c) for c in clips) / best, results


def _diff(ref: list[ClipResult], got: list[ClipResult]) -> dict[str, float | int]:
    return {
        "max_frame_prob_diff": float(max(np.abs(a.frame_probs - b.frame_probs).max() for a, b in zip(ref, got, strict=True))),
        "max_clip_prob_diff": float(max(np.abs(a.clip_probs - b.clip_probs).max() for a, b in zip(ref, got, strict=True))),
        "clip_scores_changed": sum(int(a.clip_score != b.clip_score) for a, b in zip(ref, got, strict=True)),
    }


def run(n_clips: int, frames: int, reps: int) -> list[dict[str, Any]]:
    clips = _source_clips(n_clips, frames)
    scorer = load_scorer(cached=False)
    devices = [torch.device("cpu")] + ([torch.device("cuda", 0)] if torch.cuda.is_available() else [])
    rows: list[dict[str, Any]] = []
    ref: list[ClipResult] = []
    base_fps = 0.0
    for dev in devices:
        for half in (False, True):
            scorer.to(dev, batch=64 if dev.type == "cuda" else 16)
            scorer.featurizer.half = torch.float16 if half else None  # on the CPU too (see above)
            fps, results = _score(scorer, clips, reps)
            if not ref:
                ref, base_fps = results, fps
            rows.append({"device": str(dev), "precision": "float16" if half else "float32",
                         "frames_per_s": round(fps, 2), "vs_cpu_float32": round(fps / base_fps, 2), **_diff(ref, results)})
    scorer.to("cpu")
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", type=int, default=4)
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--no-fail", action="store_true")
    a = ap.parse_args()
    rows = run(a.clips, a.frames, a.reps)
    print(f"{a.clips} clips x {a.frames} frames, {torch.get_num_threads()} CPU threads, torch {torch.__version__}")
    print(f"{'device':8s} {'precision':9s} {'frames/s':>9s} {'vs cpu f32':>10s} {'max frame dp':>12s} {'max clip dp':>11s} changed")
    for r in rows:
        print(f"{r['device']:8s} {r['precision']:9s} {r['frames_per_s']:9.1f} {r['vs_cpu_float32']:9.2f}x "
              f"{r['max_frame_prob_diff']:12.2e} {r['max_clip_prob_diff']:11.2e} {r['clip_scores_changed']}")
    over = [r for r in rows if r["max_clip_prob_diff"] > HALF_PRECISION_CLIP_TOLERANCE
            or r["max_frame_prob_diff"] > HALF_PRECISION_FRAME_TOLERANCE]
    print(f"float16 tolerance: frame probabilities {HALF_PRECISION_FRAME_TOLERANCE}, clip probabilities "
          f"{HALF_PRECISION_CLIP_TOLERANCE}: "
          f"{'exceeded by ' + ', '.join(r['device'] + ' ' + r['precision'] for r in over) if over else 'kept'}")
    print(json.dumps({"bench": "device", "rows": rows, "tolerance": {"frame": HALF_PRECISION_FRAME_TOLERANCE,
                                                                      "clip": HALF_PRECISION_CLIP_TOLERANCE}}))
    return 1 if over and not a.no_fail else 0


if __name__ == "__main__":
    raise SystemExit(main())
