"""Every architecture on the same footing (issue 19): the README's table of architectures.

For the default scorer (frozen EfficientNet-Lite0 + heads, ``scoring/weights/default.pt``) and each
trained network (``scoring/weights/architectures/*.pt``): patient-grouped CV from the weights file
(accuracy / within-1 / Spearman / QWK, mean +- sd over the fold seeds), CPU frames/s scoring the
same clips end to end from decoded frames (preprocessing included) through the scorer the worker
runs (``load_model(...).score_clips``), in this process with 2 threads, the weights file's size,
and the training time its metadata records.

Not a test: prints a Markdown table and one JSON line.

    .venv/bin/python -m benchmarks.bench_architectures
"""
from __future__ import annotations

import json
import time
from typing import Any

import numpy as np
import torch

from benchmarks.bench_scoring import _source_clips
from scoring.core.inference.loader import load_model, shipped_models


def _cv(meta: dict[str, Any]) -> dict[str, str]:
    cv = meta.get("cv") or {}
    return {k: f"{cv[k]['mean']:.3f} ± {cv[k]['sd']:.3f}" if isinstance(cv.get(k), dict) else "-"
            for k in ("accuracy", "within1", "spearman", "qwk")} | {"seeds": str(cv.get("seeds", "-"))}


def _fps(score: Any, clips: list[np.ndarray]) -> float:
    score(clips[:1])
    t = time.perf_counter()
    score(clips)
    return sum(len(c) for c in clips) / (time.perf_counter() - t)


def main() -> None:
    torch.set_num_threads(2)
    clips = _source_clips(4, 60)
    rows: list[dict[str, Any]] = []
    order = {"default": 0, "mcrfnet": 1, "reg-stn": 2, "cascade": 3}
    for shipped in sorted(shipped_models(), key=lambda m: order.get(m.name, 9)):
        model = load_model(shipped.path)
        arch = "lite0 (default)" if shipped.name == "default" else str(shipped.meta["arch"])
        rows.append({"arch": arch, "version": model.version, **_cv(shipped.meta),
                     "cpu_fps": _fps(model.score_clips, clips), "mb": shipped.path.stat().st_size / 1e6,
                     "training_s": shipped.meta.get("training_seconds")})
    print("| architecture | version | CV accuracy | within-1 | Spearman | QWK | CPU frames/s | weights MB | "
          "final training s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['arch']} | {r['version']} | {r['accuracy']} | {r['within1']} | {r['spearman']} | {r['qwk']} | "
              f"{r['cpu_fps']:.0f} | {r['mb']:.2f} | {r['training_s'] or '-'} |")
    print(json.dumps({"bench": "architectures", "clips": len(clips), "frames": sum(len(c) for c in clips),
                      "rows": rows}, default=str))


if __name__ == "__main__":
    main()
