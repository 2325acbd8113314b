"""Command-line entry points (pure functions; the Django commands only forward argv).

``python -m scoring.core.cli train --data ../shared/data --out scoring/weights/default.pt``
``python -m scoring.core.cli eval --weights default --data ../shared/data/covid-blues``
``python -m scoring.core.cli score FILE [FILE ...] [--json]``
"""
from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

DEFAULT_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
VERSION_PREFIX = "lus-frozen-lite0"


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _data_root(p: str | None) -> Path:
    return Path(p) if p else DEFAULT_DATA


def _records(data: Path, with_pocus: bool) -> list:  # type: ignore[type-arg]
    from scoring.core.datasets import covid_blues_records, pocus_records

    cb = data / "covid-blues" if (data / "covid-blues").is_dir() else data
    recs = covid_blues_records(cb)
    if with_pocus and (data / "pocus").is_dir():
        recs += pocus_records(data / "pocus", scored_only=True)
    return recs


def train_parser() -> argparse.ArgumentParser:
    """Arguments of ``train``."""
    from scoring.core.train import Recipe

    d = Recipe()
    p = argparse.ArgumentParser(prog="lus_train", description="Train LUS scoring heads (frozen recipe).")
    p.add_argument("--data", help="folder holding covid-blues/ (and pocus/); default ../shared/data")
    p.add_argument("--out", default="scoring/weights/default.pt")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cv-seeds", default="0,1,2", help="comma-separated seeds of the repeated CV ('' to skip)")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--mode", choices=("frozen", "finetune", "distill"), default="frozen")
    p.add_argument("--size", type=int, default=d.size)
    p.add_argument("--aggregator", default=d.aggregator)
    p.add_argument("--clip-c", type=float, default=d.clip_c)
    p.add_argument("--ridge-alpha", type=float, default=d.ridge_alpha)
    p.add_argument("--noise-filter", type=int, default=d.noise_filter)
    p.add_argument("--hires-size", type=int, default=d.hires_size,
                   help="canvas of the clip heads' second view (0: clip heads on the frame features only)")
    p.add_argument("--hires-c", type=float, default=d.hires_c)
    p.add_argument("--members", default=",".join(d.members),
                   help="the three voting members (hr:<taps>, lr_all, lr_cnn, ridge)")
    p.add_argument("--with-pocus", action="store_true", help="add scored POCUS clips to every training fold")
    p.add_argument("--limit", type=int, default=0, help="use only the first N clips (smoke tests)")
    p.add_argument("--version", default="", help="version string (default: derived)")
    return p


def train_main(argv: Sequence[str] | None = None) -> int:
    """Featurise, cross-validate (patient-grouped, repeated), fit on all clips, save weights."""
    import torch

    from scoring.core.train import Recipe

    args = train_parser().parse_args(list(argv) if argv is not None else None)
    args.argv = list(argv) if argv is not None else sys.argv[1:]
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.set_num_threads(2)
    if args.mode != "frozen":
        from scoring.core import finetune

        return finetune.main(args)
    members = tuple(m.strip() for m in args.members.split(",") if m.strip())
    if args.aggregator == "ensemble" and len(members) != 3:
        raise SystemExit(f"--members: the voting ensemble needs exactly three members, got {list(members)}")
    if not args.hires_size and any(m.startswith("hr:") for m in members):
        raise SystemExit("--members: hr:* members need a hires view; pass --hires-size > 0 or other members")
    recipe = Recipe(size=args.size, aggregator=args.aggregator, clip_c=args.clip_c,
                    ridge_alpha=args.ridge_alpha, noise_filter=args.noise_filter,
                    hires_size=args.hires_size, hires_c=args.hires_c, members=members)
    recs = _records(_data_root(args.data), args.with_pocus)
    if args.limit:
        recs = recs[: args.limit]
    return finish_training(args, recipe, recs)


def finish_training(args: argparse.Namespace, recipe: object, recs: list,  # type: ignore[type-arg]
                    backbone_state: dict | None = None) -> int:  # type: ignore[type-arg]
    """Shared tail of every mode: features, repeated patient-grouped CV, final fit, save."""
    import torch

    from scoring.core.domain import fit_domain_check
    from scoring.core.features import HAND_NAMES
    from scoring.core.nets import FINDINGS, SCORE_CLASSES, backbone_weights_path, sha256_file
    from scoring.core.train import Featurizer, Recipe, cross_validate, featurize_records, fit_with_noise_filter

    assert isinstance(recipe, Recipe)
    _log(f"{len(recs)} clips from {len({r.patient for r in recs})} patients, mode {args.mode}")
    t0 = time.time()
    fz = Featurizer(recipe, backbone_state=backbone_state)
    feats = featurize_records(recs, recipe, fz=fz, log=_log)
    _log(f"features ready in {time.time() - t0:.0f}s")
    y = np.array([r.score for r in recs])
    fnd = np.stack([r.findings_vector() for r in recs])
    groups = [r.patient for r in recs]
    eval_mask = np.array([r.source == "covid-blues" for r in recs])
    cv: dict[str, object] = {}
    seeds = [int(s) for s in args.cv_seeds.split(",") if s.strip()]
    if seeds:
        if backbone_state:
            _log("note: the backbone was adapted on all clips; this CV only re-fits the heads per fold "
                 "and is optimistic")
        cv = cross_validate(feats, y, fnd, groups, recipe, seeds, args.folds, eval_mask, log=_log)
        cv["optimistic_backbone_seen_all_folds"] = bool(backbone_state)
        _log("CV " + " ".join(f"{k} {v['mean']:.3f}±{v['sd']:.3f}" for k, v in cv.items()  # type: ignore[index]
                              if isinstance(v, dict) and "mean" in v))
    bundle, keep = fit_with_noise_filter(feats, y, fnd, groups, recipe, args.seed)
    bundle.backbone_state = dict(backbone_state or {})
    if recipe.hires_size:
        kept = np.nonzero(keep)[0]
        try:
            bundle.domain = fit_domain_check(np.stack([feats[i]["hires"] for i in kept]),
                                             [groups[i] for i in kept])
        except ValueError as exc:  # a toy training set: the weights work, without the check
            _log(f"domain check skipped: {exc}")
        else:
            _log(f"domain check: {bundle.domain.components.shape[0]} components, threshold "
                 f"{bundle.domain.threshold:.2f} (leave-one-patient-out q{bundle.domain.quantile:.2f})")
    version = args.version or f"{VERSION_PREFIX}-{args.mode}-{recipe.size}px-{recipe.aggregator}-s{args.seed}"
    bundle.meta = {
        "version": version,
        "architecture": (
            f"EfficientNet-Lite0 (ImageNet{', adapted: ' + args.mode if backbone_state else ', frozen'}) "
            f"truncated after block {max(recipe.taps)}, taps {list(recipe.taps)}, mean/max/3-depth-band pooling"
            f"{' + ' + str(len(HAND_NAMES)) + ' hand-crafted features' if recipe.hand else ''}; "
            "linear SORD frame head + findings head; "
            + (f"clip heads: {recipe.hires_size}-px view, {recipe.hires_frames} frames + 3 summary images, "
               f"taps {list(recipe.hires_taps)} mean/max pooled; " if recipe.hires_size else "")
            + f"voting members {list(recipe.members)}; aggregator {recipe.aggregator}"
        ),
        "mode": args.mode,
        "recipe": recipe.to_dict(),
        "preprocess": recipe.preprocess().to_dict(),
        "classes": list(SCORE_CLASSES),
        "findings": list(FINDINGS),
        "training_patients": sorted({r.patient for r in recs}),
        "training_clips": int(keep.sum()),
        "dropped_noisy_clips": [recs[i].name for i in np.nonzero(~keep)[0]],
        "cv": cv,
        "domain_check": None if bundle.domain is None else {
            "method": "PCA residual of the standardised clip descriptor (hires view), relative to the mean "
                      "training residual; threshold = leave-one-patient-out quantile",
            "components": int(bundle.domain.components.shape[0]), "quantile": bundle.domain.quantile,
            "threshold": round(bundle.domain.threshold, 4), "training_clips": bundle.domain.n_training},
        "seed": args.seed,
        "command": "python -m scoring.core.cli train " + " ".join(shlex.quote(a) for a in args.argv),
        "backbone_file": backbone_weights_path().name,
        "backbone_sha256": sha256_file(backbone_weights_path()),
        "python": platform.python_version(),
        "torch": str(torch.__version__),
    }
    # Plain JSON types only: the weights file must load with torch.load(weights_only=True).
    bundle.meta = json.loads(json.dumps(bundle.meta, default=lambda o: o.item() if hasattr(o, "item") else str(o)))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(bundle.to_state(), out)
    _log(f"saved {out} ({out.stat().st_size / 1e6:.2f} MB) version {version}")
    return 0


def eval_main(argv: Sequence[str] | None = None) -> int:
    """Score a labelled folder (COVID-BLUES layout) with any weights; print the metrics."""
    from scoring.core.datasets import covid_blues_records, decode_frames
    from scoring.core.scorer import load_scorer
    from scoring.core.stats import classification_report

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
    from scoring.core.datasets import decode_frames
    from scoring.core.scorer import load_scorer

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
    return {"train": train_main, "eval": eval_main, "score": score_main}[a[0]](a[1:])


if __name__ == "__main__":
    raise SystemExit(main())
