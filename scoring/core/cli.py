"""Command-line entry points (pure functions; the Django commands only forward argv).

``python -m scoring.core.cli train --data ../shared/data --out scoring/weights/default.pt``
``python -m scoring.core.cli eval --weights default --data ../shared/data/covid-blues``
``python -m scoring.core.cli score FILE [FILE ...] [--json]``

``train`` is :func:`scoring.core.training.cli.train_main`; ``eval`` and ``score`` only read
weights. The heavy modules (torch, the scorer) are imported when a command runs, so ``--help``
and the usage line answer at once.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

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
    scorer = load_scorer(args.weights)
    recs = covid_blues_records(args.data)
    if args.limit:
        recs = recs[: args.limit]
    y, pred, expected, probs = [], [], [], []
    for r in recs:
        frames, _ = decode_frames(r.path)
        res = scorer.score_clip(frames)
        y.append(r.score)
        pred.append(res.clip_score)
        expected.append(float(res.clip_probs @ np.arange(len(res.clip_probs))))
        probs.append(res.clip_probs)
    rep = classification_report(y, pred, expected=expected, probs=np.asarray(probs))
    rep["model"] = scorer.version
    train_patients = set(scorer.meta.get("training_patients", []))  # type: ignore[call-overload]
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
    scorer = load_scorer(args.weights)
    rc = 0
    for f in args.files:
        try:
            frames, _ = decode_frames(f)
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


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m scoring.core.cli {train,eval,score} ...``."""
    a = list(sys.argv[1:] if argv is None else argv)
    if not a or a[0] not in ("train", "eval", "score"):
        print("usage: python -m scoring.core.cli {train,eval,score} [options]", file=sys.stderr)
        return 2
    if a[0] == "train":
        from scoring.core.training.cli import train_main  # lazy: torch loads only when a command runs

        return train_main(a[1:])
    return {"eval": eval_main, "score": score_main}[a[0]](a[1:])


if __name__ == "__main__":
    raise SystemExit(main())
