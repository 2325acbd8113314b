"""The shared tail of every training mode: records, features, repeated CV, final fit, weights file.

``train`` (frozen) and ``train --mode finetune|distill`` (:mod:`scoring.core.training.finetune`)
both end here, so neither imports the other's command line.
"""
from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from scoring.core.features.featurizer import Featurizer
from scoring.core.features.handcrafted import HAND_NAMES
from scoring.core.features.recipe import Recipe
from scoring.core.inference.bundle import Bundle
from scoring.core.inference.domain import fit_domain_check
from scoring.core.labels import FINDINGS, SCORE_CLASSES
from scoring.core.models.lite0 import backbone_weights_path, sha256_file
from scoring.core.training.caches import content_sha256, featurize_records
from scoring.core.training.cv import cross_validate, fit_with_noise_filter
from scoring.core.training.datasets import DEFAULT_DATA, ClipRecord, covid_blues_records, pocus_records

VERSION_PREFIX = "lus-frozen-lite0"


def log(msg: str) -> None:
    """Progress on stderr (stdout stays for results)."""
    print(msg, file=sys.stderr, flush=True)


def training_records(data: str | None, with_pocus: bool, limit: int = 0) -> list[ClipRecord]:
    """The labelled clips under ``data`` (default ``../shared/data``): COVID-BLUES, and the scored
    POCUS clips with ``with_pocus``; the first ``limit`` only when it is > 0 (smoke tests)."""
    root = Path(data) if data else DEFAULT_DATA
    cb = root / "covid-blues" if (root / "covid-blues").is_dir() else root
    recs = covid_blues_records(cb)
    if with_pocus and (root / "pocus").is_dir():
        recs += pocus_records(root / "pocus", scored_only=True)
    return recs[:limit] if limit else recs


def shipped_records(meta: dict[str, object], data: str | None = None) -> list[ClipRecord]:
    """The labelled clips a shipped weights file was trained on (its ``training_patients``; POCUS
    too when its command added it), read from the data folder. ValueError naming the folder when
    it is not on this machine."""
    root = Path(data) if data else DEFAULT_DATA
    if not (root / "covid-blues").is_dir():
        raise ValueError(f"the shipped training set is not on this machine (expected {root / 'covid-blues'})")
    recs = training_records(str(root), "--with-pocus" in str(meta.get("command", "")))
    patients = meta.get("training_patients")
    wanted = set(patients) if isinstance(patients, list) else None
    return [r for r in recs if wanted is None or r.patient in wanted]


def finish_training(args: argparse.Namespace, recipe: Recipe, recs: list[ClipRecord],
                    backbone_state: dict[str, torch.Tensor] | None = None) -> int:
    """Features, repeated patient-grouped CV, final fit (with the domain check), weights file."""
    log(f"{len(recs)} clips from {len({r.patient for r in recs})} patients, mode {args.mode}")
    t0 = time.time()
    feats = featurize_records(recs, recipe, fz=Featurizer(recipe, backbone_state=backbone_state), log=log)
    log(f"features ready in {time.time() - t0:.0f}s")
    y = np.array([r.score for r in recs])
    fnd = np.stack([r.findings_vector() for r in recs])
    groups = [r.patient for r in recs]
    cv = _cross_validation(args, feats, y, fnd, groups, recipe, np.array([r.source == "covid-blues" for r in recs]),
                           adapted=bool(backbone_state))
    bundle, keep = fit_with_noise_filter(feats, y, fnd, groups, recipe, args.seed)
    bundle.backbone_state = dict(backbone_state or {})
    fit_domain(bundle, feats, groups, keep)
    bundle.meta = _metadata(args, recipe, recs, keep, cv, bundle)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(bundle.to_state(), out)
    log(f"saved {out} ({out.stat().st_size / 1e6:.2f} MB) version {bundle.meta['version']}")
    return 0


def _cross_validation(args: argparse.Namespace, feats: list[dict[str, np.ndarray]], y: np.ndarray, fnd: np.ndarray,
                      groups: list[str], recipe: Recipe, eval_mask: np.ndarray, adapted: bool) -> dict[str, object]:
    """The CV block of the metadata ({} with ``--cv-seeds ''``)."""
    seeds = [int(s) for s in args.cv_seeds.split(",") if s.strip()]
    if not seeds:
        return {}
    if adapted:
        log("note: the backbone was adapted on all clips; this CV only re-fits the heads per fold and is optimistic")
    cv = cross_validate(feats, y, fnd, groups, recipe, seeds, args.folds, eval_mask, log=log)
    cv["optimistic_backbone_seen_all_folds"] = adapted
    log("CV " + " ".join(f"{k} {v['mean']:.3f}±{v['sd']:.3f}" for k, v in cv.items()
                         if isinstance(v, dict) and "mean" in v))
    return cv


def fit_domain(bundle: Bundle, feats: list[dict[str, np.ndarray]], groups: list[str], keep: np.ndarray) -> None:
    """Fit the bundle's out-of-domain check on the kept clips' hires descriptors (recipes with a
    hires view; a toy training set keeps the weights without the check)."""
    if not bundle.recipe.hires_size:
        return
    kept = np.nonzero(keep)[0]
    try:
        bundle.domain = fit_domain_check(np.stack([feats[i]["hires"] for i in kept]), [groups[i] for i in kept])
    except ValueError as exc:  # a toy training set: the weights work, without the check
        log(f"domain check skipped: {exc}")
    else:
        log(f"domain check: {bundle.domain.components.shape[0]} components, threshold "
            f"{bundle.domain.threshold:.2f} (leave-one-patient-out q{bundle.domain.quantile:.2f})")


def _architecture(recipe: Recipe, mode: str, adapted: bool) -> str:
    return (
        f"EfficientNet-Lite0 (ImageNet{', adapted: ' + mode if adapted else ', frozen'}) "
        f"truncated after block {max(recipe.taps)}, taps {list(recipe.taps)}, mean/max/3-depth-band pooling"
        f"{' + ' + str(len(HAND_NAMES)) + ' hand-crafted features' if recipe.hand else ''}; "
        "linear SORD frame head + findings head; "
        + (f"clip heads: {recipe.hires_size}-px view, {recipe.hires_frames} frames + 3 summary images, "
           f"taps {list(recipe.hires_taps)} mean/max pooled; " if recipe.hires_size else "")
        + f"voting members {list(recipe.members)}; aggregator {recipe.aggregator}"
    )


def _metadata(args: argparse.Namespace, recipe: Recipe, recs: list[ClipRecord], keep: np.ndarray,
              cv: dict[str, object], bundle: Bundle) -> dict[str, object]:
    """The weights file's ``meta`` (plain JSON types: it must load with torch.load(weights_only=True))."""
    version = args.version or f"{VERSION_PREFIX}-{args.mode}-{recipe.size}px-{recipe.aggregator}-s{args.seed}"
    domain = bundle.domain
    meta = {
        "version": version,
        "architecture": _architecture(recipe, args.mode, bool(bundle.backbone_state)),
        "mode": args.mode,
        "recipe": recipe.to_dict(),
        "preprocess": recipe.preprocess().to_dict(),
        "classes": list(SCORE_CLASSES),
        "findings": list(FINDINGS),
        "training_patients": sorted({r.patient for r in recs}),
        "training_clips": int(keep.sum()),
        # By content: tells a site training which of its clips this model has already seen.
        "training_clip_sha256": sorted({content_sha256(recs[i].path) for i in np.nonzero(keep)[0]}),
        "dropped_noisy_clips": [recs[i].name for i in np.nonzero(~keep)[0]],
        "cv": cv,
        "domain_check": None if domain is None else {
            "method": "PCA residual of the standardised clip descriptor (hires view), relative to the mean "
                      "training residual; threshold = leave-one-patient-out quantile",
            "components": int(domain.components.shape[0]), "quantile": domain.quantile,
            "threshold": round(domain.threshold, 4), "training_clips": domain.n_training},
        "seed": args.seed,
        "command": "python -m scoring.core.cli train " + " ".join(shlex.quote(a) for a in args.argv),
        "backbone_file": backbone_weights_path().name,
        "backbone_sha256": sha256_file(backbone_weights_path()),
        "python": platform.python_version(),
        "torch": str(torch.__version__),
    }
    return json.loads(json.dumps(meta, default=lambda o: o.item() if hasattr(o, "item") else str(o)))  # type: ignore[no-any-return]
