"""``lus_train --arch mcrfnet|reg-stn``: data, repeated CV, final fit and weights file of a frame network
(:mod:`scoring.core.training.nets`), and loading such a file to score clips.

Weights file (``torch.save`` of plain types, loads with ``weights_only=True``): ``format``
(``lusweb-net-1``), ``recipe`` (:class:`NetRecipe`), ``preprocess`` (the default scorer's
preprocessing at the recipe's size), ``state`` (the network's tensors) and ``meta`` (version,
architecture, parameters, CV, training patients, seconds, command).
"""
from __future__ import annotations

import argparse
import json
import platform
import shlex
import time
from pathlib import Path

import numpy as np
import torch

from scoring.core.features.preprocess import PreprocessConfig
from scoring.core.features.recipe import Recipe
from scoring.core.inference.net_scorer import NET_FORMAT, NetScorer, load_net
from scoring.core.labels import SCORE_CLASSES
from scoring.core.labels_six import SIX_CLASS_NAMES, six_class_label
from scoring.core.training.caches import cached_frames
from scoring.core.training.covid_blues import clips as covid_blues_clips
from scoring.core.training.datasets import ClipRecord
from scoring.core.training.nets import NetRecipe, cross_validate_net, fit_net, net_input
from scoring.core.training.run import log, training_records

FORMAT = NET_FORMAT
__all__ = ["FORMAT", "NetScorer", "load_net", "main", "metadata", "net_card", "preprocess_config", "record_inputs",
           "recipe_from_args", "six_labels"]
WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "weights" / "architectures"

DESCRIPTION = {
    "mcrfnet": "MCRFNet (Hu et al. 2021), trained from scratch: grey / K-means / gradient modalities fused by a 1x1 "
               "convolution, ResNeXt trunk (cardinality 8) with selective-kernel and squeeze-excitation attention, "
               "six-class and Soldati 0-3 heads",
    "reg-stn": "Reg-STN (Roy et al. 2020), trained from scratch: localisation network predicting two scale-constrained "
               "affine crops, one classifier shared by the crops, SORD + crop consistency + scale prior",
    "cascade": "Cascade (Xing et al. 2022): stage one drops training clips whose out-of-fold score (five frozen "
               "EfficientNet-Lite0 models, five patient-grouped folds) differs from their label; stage two: frozen "
               "EfficientNet-Lite0 + heads, MCRFNet and Reg-STN vote (majority; all different: the most confident "
               "if >= 0.8, else the median class)",
}


def preprocess_config(recipe: NetRecipe) -> PreprocessConfig:
    """The default scorer's preprocessing on the recipe's canvas size."""
    return Recipe(size=recipe.size).preprocess()


def six_labels(records: list[ClipRecord]) -> np.ndarray:
    """Each record's six-class index (``scoring.core.labels_six``), -1 when it has none (not a
    COVID-BLUES clip, or unlabelled by the derivation)."""
    by_path: dict[str, int] = {}
    roots = {Path(r.path).parent.parent for r in records if r.source == "covid-blues"}
    for root in roots:
        for c in covid_blues_clips(root):
            label = six_class_label(c.score, c.a_lines, c.b_lines, c.comment)
            by_path[str(c.path)] = -1 if label.index is None else label.index
    return np.array([by_path.get(str(Path(r.path)), -1) for r in records], int)


def record_inputs(records: list[ClipRecord], recipe: NetRecipe) -> list[torch.Tensor]:
    """Network inputs of every record: ``clip_frames`` preprocessed frames (from the frame cache)."""
    cfg = preprocess_config(recipe)
    out = []
    for i, r in enumerate(records):
        out.append(net_input(recipe, cached_frames(r.path, cfg, recipe.clip_frames)))
        if (i + 1) % 50 == 0:
            log(f"inputs {i + 1}/{len(records)}")
    return out


#: ``--net-aggregator``'s default per architecture: Reg-STN aggregates with the learned uninorm
#: (Roy et al.), MCRFNet with the mean (Hu et al. score frames).
DEFAULT_AGGREGATOR = {"mcrfnet": "mean", "reg-stn": "uninorm"}
#: How each aggregator turns frames into the clip (the model card's words).
CLIP_RULE = {"mean": "clip = argmax of the mean frame probabilities",
             "uninorm": "clip = learned uninorm of the frame probabilities (Roy et al. 2020; neutral elements and "
                        "temperature fitted on the training clips' frame probabilities)"}


def recipe_from_args(args: argparse.Namespace, arch: str = "", aggregator: str = "") -> NetRecipe:
    """The recipe named by the command's options (for ``arch``, default ``--arch``; ``aggregator``,
    default ``--net-aggregator``, else the architecture's default)."""
    arch = arch or args.arch
    chosen = aggregator or getattr(args, "net_aggregator", "") or DEFAULT_AGGREGATOR[arch]
    return NetRecipe(arch=arch, size=args.size, clip_frames=args.clip_frames, epoch_frames=args.epoch_frames,
                     epochs=args.epochs, aggregator=chosen)


def main(args: argparse.Namespace) -> int:
    """Train a network: CV over ``--cv-seeds`` on the default scorer's folds, fit on every clip, save."""
    recipe = recipe_from_args(args)
    recs = training_records(args.data, False, args.limit)
    y = np.array([r.score for r in recs])
    six = six_labels(recs)
    groups = [r.patient for r in recs]
    log(f"{args.arch}: {len(recs)} clips from {len(set(groups))} patients, {int((six >= 0).sum())} with a six-class label")
    inputs = record_inputs(recs, recipe)
    seeds = [int(s) for s in args.cv_seeds.split(",") if s.strip()]
    cv = cross_validate_net(recipe, inputs, y, six, groups, seeds, args.folds, log=log) if seeds else {}
    t0 = time.perf_counter()
    model, uninorm = fit_net(recipe, inputs, y, six, args.seed, log=log)
    seconds = time.perf_counter() - t0
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = metadata(args, recipe.arch, recs, cv, sum(int(p.numel()) for p in model.parameters()), seconds,
                    recipe.to_dict())
    meta["architecture"] = f"{meta['architecture']}; {CLIP_RULE[recipe.aggregator]}"
    if uninorm is not None:
        meta["uninorm_neutral_elements"] = [round(float(e), 4) for e in uninorm.e.detach()]
    torch.save({"format": FORMAT, "recipe": recipe.to_dict(), "preprocess": preprocess_config(recipe).to_dict(),
                "state": model.state_dict(), "uninorm": uninorm.state_dict() if uninorm is not None else None,
                "meta": meta}, out)
    out.with_suffix(".md").write_text(net_card(meta, out), encoding="utf-8")
    log(f"saved {out} and its card ({out.stat().st_size / 1e6:.2f} MB) version {meta['version']}, "
        f"final fit {seconds:.0f} s")
    return 0


def metadata(args: argparse.Namespace, arch: str, recs: list[ClipRecord], cv: dict[str, object], parameters: int,
             seconds: float, recipe: dict[str, object]) -> dict[str, object]:
    """The weights file's ``meta`` (plain JSON types) of a network or a cascade."""
    version = args.version or f"lusweb-{arch.replace('-', '')}{args.size}-s{args.seed}"
    meta = {
        "version": version, "arch": arch, "architecture": DESCRIPTION[arch], "parameters": parameters,
        "recipe": recipe, "classes": list(SCORE_CLASSES), "six_classes": list(SIX_CLASS_NAMES),
        "training_patients": sorted({r.patient for r in recs}), "training_clips": len(recs),
        "training_seconds": round(seconds, 1), "threads": torch.get_num_threads(), "cv": cv, "seed": args.seed,
        "command": "python manage.py lus_train " + " ".join(shlex.quote(a) for a in args.argv),
        "python": platform.python_version(), "torch": str(torch.__version__),
    }
    return json.loads(json.dumps(meta, default=lambda o: o.item() if hasattr(o, "item") else str(o)))  # type: ignore[no-any-return]


def net_card(meta: dict[str, object], path: str | Path) -> str:
    """The model card (Markdown) of a network weights file, every figure read from its metadata."""
    cv = meta.get("cv") if isinstance(meta.get("cv"), dict) else {}
    assert isinstance(cv, dict)
    recipe = meta.get("recipe", {})
    lines = [
        f"# Model card: {meta['version']}", "",
        f"**Architecture.** {meta['architecture']}. {meta['parameters']:,} parameters; weights file "
        f"`{Path(path).name}`, {Path(path).stat().st_size / 1e6:.2f} MB.", "",
        f"**Training data.** {meta['training_clips']} COVID-BLUES clips of {len(meta['training_patients'])} "  # type: ignore[arg-type]
        "patients, expert Soldati scores as SORD targets on every frame"
        + (" plus the six-class labels derived from the expert's flags and comments"
           if meta["arch"] in ("mcrfnet", "cascade") else "")
        + ".", "",
        f"**Recipe.** `{json.dumps(recipe, sort_keys=True)}`; seed {meta['seed']}; final fit "
        f"{meta['training_seconds']} s on {meta['threads']} CPU threads.", "",
        f"**Reproduce.** `{meta['command']}`", "",
    ]
    if cv:
        lines += [
            f"## Patient-grouped cross-validation ({cv['k']} folds x seeds {cv['seeds']}, {cv['n_clips']} clips, "
            f"{cv['n_patients']} patients; the default scorer's folds)", "",
            "| metric | mean | sd | per seed |", "|---|---|---|---|",
        ]
        for key in ("accuracy", "within1", "spearman", "spearman_expected", "qwk", "macro_f1", "ece", "brier"):
            f = cv.get(key)
            if isinstance(f, dict):
                seeds = ", ".join(f"{v:.3f}" for v in f["per_seed"])
                lines.append(f"| {key} | {f['mean']:.3f} | {f['sd']:.3f} | {seeds} |")
        lines += ["", f"Training one fold took {cv['fold_training_seconds']:.0f} s on average.", ""]
    lines += [
        "## Limits", "",
        "- Trained from scratch on 42 patients on 2 CPU cores in minutes: a small budget for a network "
        "with no pretrained weights. Its CV is the honest figure; no variant was chosen on it.",
        "- Probabilities are not calibrated (see ECE above); no out-of-domain check is fitted.",
        "- A scorer a study may choose (study admins, the site models page); the default scorer stays the "
        "first reader elsewhere. It predicts no findings and carries no out-of-domain check.",
        "",
    ]
    return "\n".join(lines)
