"""``lus_train --arch cascade``: the two-stage cascade of Xing et al. 2022 with three different networks.

* **Stage one** filters the training clips with five models over five patient-grouped folds
  (:func:`scoring.core.training.cascade.stage_one_filter`, a clip is dropped when its out-of-fold
  score differs from its label). The filter model is the default scorer's recipe (frozen
  EfficientNet-Lite0 features + heads): seconds per fit, so stage one costs no network training.
* **Stage two**: three different networks, fitted on the kept clips, vote
  (:mod:`scoring.core.inference.vote`: majority; all three different: the most confident if its
  top probability is >= 0.8, else the median class):
  1. ``lite0``: the default scorer's recipe (frozen EfficientNet-Lite0 + heads, no inner filter);
  2. ``mcrfnet`` and 3. ``reg-stn``: trained end to end (:mod:`scoring.core.training.nets`) with the
     recipes given to the command.

Cross-validated with the folds every architecture uses (``cv_splits``), stage one inside each
training part only. Weights file: ``format`` ``lusweb-cascade-1``, the Lite0 member's bundle, both
networks (recipe + tensors), the kept clips and ``meta``.
"""
from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from scoring.core.features.featurizer import Featurizer
from scoring.core.features.recipe import Recipe
from scoring.core.inference.net_scorer import CASCADE_FORMAT, CascadeScorer, load_cascade
from scoring.core.inference.vote import vote_batch
from scoring.core.training.caches import featurize_records
from scoring.core.training.cascade import FitPredict, stage_one_filter
from scoring.core.training.cv import cv_splits, cv_summary, seed_report
from scoring.core.training.fitting import fit_bundle
from scoring.core.training.nets import NetRecipe, predict_clips, train_net
from scoring.core.training.nets_run import (
    metadata,
    net_card,
    preprocess_config,
    record_inputs,
    six_labels,
)
from scoring.core.training.run import log, training_records

FORMAT = CASCADE_FORMAT
__all__ = ["FORMAT", "MEMBERS", "CascadeScorer", "cross_validate_cascade", "load_cascade", "main"]
MEMBERS: tuple[str, ...] = ("lite0", "mcrfnet", "reg-stn")


def lite0_recipe() -> Recipe:
    """The default scorer's recipe without its own noise filter (stage one filters)."""
    return Recipe.from_dict({**Recipe().to_dict(), "noise_filter": 0})


class Data:
    """The clips every member reads: Lite0 features, network inputs, labels, patients."""

    def __init__(self, args: argparse.Namespace, nets: dict[str, NetRecipe]) -> None:
        learned = sorted(a for a, r in nets.items() if r.aggregator != "mean")
        if learned:  # the members vote with their mean-aggregated clip probabilities (as committed)
            raise ValueError(f"cascade members aggregate frames with the mean; {', '.join(learned)} asks otherwise")
        self.recs = training_records(args.data, False, args.limit)
        self.y = np.array([r.score for r in self.recs], int)
        self.findings = np.stack([r.findings_vector() for r in self.recs])
        self.groups = [r.patient for r in self.recs]
        self.six = six_labels(self.recs)
        recipe = lite0_recipe()
        self.feats = featurize_records(self.recs, recipe, fz=Featurizer(recipe), log=log)
        self.inputs = {arch: record_inputs(self.recs, r) for arch, r in nets.items()}


def lite0_member(data: Data, seed: int) -> FitPredict:
    """Fit the Lite0 heads on the training clips; clip probabilities of the test clips."""
    def fit_predict(tr: np.ndarray, te: np.ndarray) -> np.ndarray:
        b = fit_bundle([data.feats[i] for i in tr], data.y[tr], data.findings[tr], lite0_recipe(), seed,
                       frame_heads=False)
        return np.stack([np.asarray(b.predict(data.feats[i])["clip_probs"], float) for i in te])
    return fit_predict


def net_member(data: Data, recipe: NetRecipe, seed: int) -> FitPredict:
    """Train the network on the training clips; clip probabilities of the test clips."""
    inputs = data.inputs[recipe.arch]

    def fit_predict(tr: np.ndarray, te: np.ndarray) -> np.ndarray:
        model = train_net(recipe, [inputs[i] for i in tr], data.y[tr], data.six[tr], seed)
        return np.stack([np.asarray(p["clip_probs"], float) for p in predict_clips(model, recipe, [inputs[i] for i in te])])
    return fit_predict


def cross_validate_cascade(data: Data, nets: dict[str, NetRecipe], seeds: list[int], k: int) -> dict[str, object]:
    """Patient-grouped CV of the whole cascade (stage one inside each training part), and how
    often each vote rule decided and how many training clips stage one kept."""
    per_seed: list[dict[str, object]] = []
    rules: Counter[str] = Counter()
    kept_share: list[float] = []
    seconds: list[float] = []
    for seed in seeds:
        outs: dict[int, dict[str, object]] = {}
        for fold, (tr, te) in enumerate(cv_splits(data.y, data.groups, np.ones(len(data.y), bool), k, seed)):
            t0 = time.perf_counter()
            s = seed * 100 + fold
            kept, _ = stage_one_filter(lite0_member(data, s), data.y, data.groups, tr, 5, s)
            members = [lite0_member(data, s), *(net_member(data, nets[a], s) for a in MEMBERS[1:])]
            probs, classes, why = vote_batch([m(kept, te) for m in members])
            seconds.append(time.perf_counter() - t0)
            rules.update(why)
            kept_share.append(len(kept) / len(tr))
            outs.update({int(i): {"clip_probs": p, "clip_score": int(c)} for i, p, c in zip(te, probs, classes,
                                                                                             strict=True)})
            log(f"seed {seed} fold {fold + 1}/{k}: stage one kept {len(kept)}/{len(tr)}, {seconds[-1]:.0f} s")
        rep = seed_report(data.y, np.arange(len(data.y)), outs)
        per_seed.append(rep)
        log(f"seed {seed}: acc {rep['accuracy']:.3f} within1 {rep['within1']:.3f} spearman {rep['spearman']:.3f} "
            f"qwk {rep['qwk']:.3f}")
    cv = cv_summary(per_seed, seeds, k, len(data.y), len(set(data.groups)))
    cv["vote_rules"] = dict(rules)
    cv["stage_one_kept_share"] = float(np.mean(kept_share))
    cv["fold_training_seconds"] = float(np.mean(seconds))
    return cv


def main(args: argparse.Namespace, nets: dict[str, NetRecipe]) -> int:
    """CV, final fit (stage one over every clip, the three members on the kept ones), weights file."""
    data = Data(args, nets)
    seeds = [int(s) for s in args.cv_seeds.split(",") if s.strip()]
    cv = cross_validate_cascade(data, nets, seeds, args.folds) if seeds else {}
    t0 = time.perf_counter()
    everyone = np.arange(len(data.y))
    kept, _ = stage_one_filter(lite0_member(data, args.seed), data.y, data.groups, everyone, 5, args.seed)
    lite = fit_bundle([data.feats[i] for i in kept], data.y[kept], data.findings[kept], lite0_recipe(), args.seed)
    states = {a: train_net(nets[a], [data.inputs[a][i] for i in kept], data.y[kept], data.six[kept], args.seed)
              for a in MEMBERS[1:]}
    seconds = time.perf_counter() - t0
    meta = metadata(args, "cascade", data.recs, cv, sum(int(p.numel()) for m in states.values() for p in m.parameters()),
                    seconds, {a: r.to_dict() for a, r in nets.items()})
    meta["stage_one_dropped"] = [data.recs[i].name for i in np.setdiff1d(everyone, kept)]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": FORMAT, "lite0": lite.to_state(),
                "members": {a: {"recipe": nets[a].to_dict(), "state": m.state_dict()} for a, m in states.items()},
                "preprocess": preprocess_config(nets["mcrfnet"]).to_dict(), "meta": meta}, out)
    out.with_suffix(".md").write_text(net_card(meta, out), encoding="utf-8")
    log(f"saved {out} and its card ({out.stat().st_size / 1e6:.2f} MB), stage one kept {len(kept)}/{len(everyone)}, "
        f"final fit {seconds:.0f} s")
    return 0
