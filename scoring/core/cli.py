"""Command-line entry points (pure functions; the Django commands only forward argv).

``python -m scoring.core.cli train --data ../shared/data --out scoring/weights/default.pt``
``python -m scoring.core.cli eval --weights default --data ../shared/data/covid-blues``
``python -m scoring.core.cli score FILE [FILE ...] [--json]``
``python -m scoring.core.cli experiment usaugment [--copies 2]`` (``docs/directions.md``)

``train`` is :func:`scoring.core.training.cli.train_main`; ``eval`` and ``score`` only read
weights. The heavy modules (torch, the scorer) are imported when a command runs, so ``--help``
and the usage line answer at once.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from scoring.core.stats import classification_report
from scoring.core.training.datasets import DEFAULT_DATA, covid_blues_records, decode_frames


def eval_main(argv: Sequence[str] | None = None) -> int:
    """Score a labelled folder (COVID-BLUES layout) with any weights; print the metrics."""
    from scoring.core.inference.scorer import load_scorer  # lazy: torch loads only when a command runs

    p = argparse.ArgumentParser(prog="lus_eval", description="Evaluate weights on a labelled folder.")
    p.add_argument("--weights", default=None)
    p.add_argument("--data", default=str(DEFAULT_DATA / "covid-blues"),
                   help="folder with severity.csv + lus_videos/ (COVID-BLUES layout)")
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(list(argv) if argv is not None else None)
    net = network(args.weights)
    scorer = net if net is not None else load_scorer(args.weights)
    recs = covid_blues_records(args.data)
    if args.limit:
        recs = recs[: args.limit]
    y, pred, expected, probs = [], [], [], []
    for r in recs:
        frames, _ = decode_frames(r.path)
        clip_probs, clip_score = _clip(scorer, net, frames)
        y.append(r.score)
        pred.append(clip_score)
        expected.append(float(clip_probs @ np.arange(len(clip_probs))))
        probs.append(clip_probs)
    rep = classification_report(y, pred, expected=expected, probs=np.asarray(probs))
    rep["model"] = scorer.version
    train_patients = set(scorer.meta.get("training_patients", []))  # type: ignore[call-overload,arg-type,unused-ignore]
    overlap = sorted({r.patient for r in recs} & train_patients)
    rep["patients_seen_in_training"] = len(overlap)
    if args.json:
        print(json.dumps(rep))
    else:
        for k, v in rep.items():
            print(f"{k}: {v}")
        if overlap:
            print(f"WARNING: {len(overlap)} of these patients were in the training set; "
                  "use the CV metrics in the weights metadata for an honest estimate")
    return 0


def score_main(argv: Sequence[str] | None = None) -> int:
    """Score clip files; ``--json`` prints one JSON object per line."""
    from scoring.core.inference.scorer import load_scorer  # lazy: torch loads only when a command runs

    p = argparse.ArgumentParser(prog="lus_score", description="Score LUS clips.")
    p.add_argument("files", nargs="+")
    p.add_argument("--weights", default=None)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(list(argv) if argv is not None else None)
    net = network(args.weights)
    scorer = net if net is not None else load_scorer(args.weights)
    rc = 0
    for f in args.files:
        try:
            frames, _ = decode_frames(f)
            if net is not None:
                clip_probs, clip_score = _clip(scorer, net, frames)
                _print_network_score(f, len(frames), clip_probs, clip_score, net.version, args.json)
                continue
            res = scorer.score_clip(frames)
        except Exception as exc:  # noqa: BLE001 - report and go on with the other files
            rc = 1
            if args.json:
                print(json.dumps({"file": f, "error": str(exc), "model": scorer.version}))
            else:
                print(f"{f}: ERROR {exc}")
            continue
        d = res.to_dict()
        row = {"file": f, "frames": d["frames"], "frame_scores": d["frame_scores"], "frame_probs": d["frame_probs"],
               "clip_score": d["clip_score"], "clip_probs": d["clip_probs"], "findings": d["findings"],
               "model": d["model"], "aggregator": d["aggregator"], "six_class_mean": d["six_class"]["mean"],  # type: ignore[index]
               "domain": d["domain"]}
        if args.json:
            print(json.dumps(row))
        else:
            probs = " ".join(f"{x:.2f}" for x in res.clip_probs)
            unlike = " - UNLIKE THE TRAINING CLIPS (scores not validated)" if res.in_domain is False else ""
            print(f"{f}: score {res.clip_score} (probs {probs}), {len(res.frame_scores)} frames, "
                  f"model {scorer.version}{unlike}")
    return rc


def network(weights: str | None) -> Any:
    """The network or cascade of ``lus_train --arch`` in the file ``weights`` (it has
    ``version``, ``meta`` and ``score_frames``), or None when ``weights`` names scorer weights."""
    if not weights or not Path(weights).is_file():
        return None
    import torch  # lazy: torch loads only when a command runs

    from scoring.core.training import cascade_run, nets_run  # lazy: torch loads only when a command runs

    fmt = torch.load(weights, map_location="cpu", weights_only=True).get("format")
    if fmt == nets_run.FORMAT:
        return nets_run.load_net(weights)
    if fmt == cascade_run.FORMAT:
        return cascade_run.load_cascade(weights)
    return None


def _clip(scorer: Any, net: Any, frames: np.ndarray) -> tuple[np.ndarray, int]:
    """A clip's probabilities and score from either kind of weights."""
    if net is not None:
        _, clip = net.score_frames(frames)
        return np.asarray(clip["clip_probs"], float), int(clip["clip_score"])
    res = scorer.score_clip(frames)
    return res.clip_probs, int(res.clip_score)


def _print_network_score(f: str, n_frames: int, probs: np.ndarray, score: int, version: str, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"file": f, "frames": n_frames, "clip_score": score,
                          "clip_probs": np.round(probs, 5).tolist(), "model": version}))
    else:
        print(f"{f}: score {score} (probs {' '.join(f'{x:.2f}' for x in probs)}), {n_frames} frames, model {version}")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m scoring.core.cli {train,eval,score,experiment} ...``."""
    a = list(sys.argv[1:] if argv is None else argv)
    if not a or a[0] not in ("train", "eval", "score", "experiment"):
        print("usage: python -m scoring.core.cli {train,eval,score,experiment} [options]", file=sys.stderr)
        return 2
    if a[0] == "train":
        from scoring.core.training.cli import train_main  # lazy: torch loads only when a command runs

        return train_main(a[1:])
    if a[0] == "experiment":
        from scoring.core.training.directions import experiment_main  # lazy: torch loads only when a command runs

        return experiment_main(a[1:])
    return {"eval": eval_main, "score": score_main}[a[0]](a[1:])


if __name__ == "__main__":
    raise SystemExit(main())
