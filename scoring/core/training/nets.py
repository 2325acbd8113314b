"""Frame networks trained end to end on clip labels: MCRFNet (Hu et al. 2021) and Reg-STN (Roy et al. 2020).

Unlike the default scorer (frozen ImageNet features read by linear heads), these networks learn
every weight from the COVID-BLUES clips, on 2 CPU cores, at 112 px:

* **inputs**: the same preprocessing as the default scorer (sector found, everything outside it
  masked, the crop on a 112-px canvas, gain normalised per clip), ``clip_frames`` frames per clip
  taken uniformly. MCRFNet reads the three modalities of each frame (grey level, K-means map,
  gradient field); Reg-STN the grey frame.
* **labels**: every frame carries its clip's Soldati score as SORD targets (class 0 placed at -1,
  as for the default scorer); MCRFNet's six-class head also learns the clip's six-class label
  (``scoring.core.labels_six``) where it has one. Reg-STN's loss adds the consistency between its
  two crops and the scale prior (``scoring.core.models.regstn.regstn_loss``).
* **training**: AdamW with a cosine schedule, ``epoch_frames`` frames drawn per clip and epoch,
  left-right flips, losses weighted by the inverse frequency of the clip's score.
* **clip score**: the recipe's ``aggregator``: the argmax of the mean frame probabilities
  (``mean``), or Roy et al.'s learned uninorm (``uninorm``, fitted on the training clips' frame
  probabilities once the network is trained; the default of ``lus_train --arch reg-stn``).

Cross-validation uses the folds of the default scorer's CV (``cv_splits``: the same
patient-grouped folds for the same seeds), so the architectures are compared on the same
patients.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from scoring.core.inference.aggregate import UninormAggregator
from scoring.core.inference.networks import (
    NET_AGGREGATORS,
    NET_ARCHS,
    NetRecipe,
    build_net,
    clip_prediction,
    frame_probs,
    net_input,
)
from scoring.core.labels import SCORE_CLASSES
from scoring.core.models.regstn import regstn_loss
from scoring.core.training.cv import cv_splits, cv_summary, seed_report
from scoring.core.training.sord import soft_cross_entropy, sord_targets

#: Re-exported: the recipe and inference half live in :mod:`scoring.core.inference.networks`.
__all__ = ["NET_AGGREGATORS", "NET_ARCHS", "NetRecipe", "build_net", "clip_prediction", "cross_validate_net",
           "fit_aggregator", "fit_net", "frame_probs", "net_input", "predict_clips", "train_net"]


def fit_aggregator(model: nn.Module, recipe: NetRecipe, inputs: Sequence[torch.Tensor], y: np.ndarray,
                   seed: int) -> UninormAggregator | None:
    """The recipe's learned clip aggregator, fitted on the trained ``model``'s frame probabilities of
    its training clips (None for ``mean``)."""
    if recipe.aggregator != "uninorm":
        return None
    clips = [frame_probs(model, recipe, x) for x in inputs]
    return UninormAggregator(len(SCORE_CLASSES)).fit(clips, [int(v) for v in y], seed=seed).eval()


def fit_net(recipe: NetRecipe, inputs: Sequence[torch.Tensor], y: np.ndarray, six: np.ndarray, seed: int,
            log: Callable[[str], None] | None = None) -> tuple[nn.Module, UninormAggregator | None]:
    """:func:`train_net`, then :func:`fit_aggregator` on the same clips."""
    model = train_net(recipe, inputs, y, six, seed, log=log)
    return model, fit_aggregator(model, recipe, inputs, y, seed)


def _loss(model: nn.Module, recipe: NetRecipe, x: torch.Tensor, q: torch.Tensor, six: torch.Tensor,
          w: torch.Tensor) -> torch.Tensor:
    out = model(x)
    if recipe.arch == "mcrfnet":
        loss = soft_cross_entropy(out.score_logits, q, w)
        known = six >= 0
        if recipe.six_weight and bool(known.any()):
            ce = nn.functional.cross_entropy(out.six_logits[known], six[known], reduction="none")
            loss = loss + recipe.six_weight * (ce * w[known]).sum() / w[known].sum()
        return loss
    total, _ = regstn_loss(out, q)
    return total


def _class_weights(y: np.ndarray, balanced: bool) -> np.ndarray:
    """Per-clip loss weights: inverse score frequency (mean 1) or ones."""
    if not balanced:
        return np.ones(len(y))
    counts = np.bincount(y, minlength=len(SCORE_CLASSES)).astype(float)
    w = 1.0 / np.maximum(counts[y], 1.0)
    return w * len(y) / w.sum()


def train_net(recipe: NetRecipe, inputs: Sequence[torch.Tensor], y: np.ndarray, six: np.ndarray, seed: int,
              log: Callable[[str], None] | None = None) -> nn.Module:
    """Train a network on the clips ``inputs`` (one tensor of frames each), their scores ``y`` and
    six-class labels ``six`` (-1 unlabelled); deterministic for a seed on one machine."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    y = np.asarray(y, int)
    model = build_net(recipe)
    steps_per_epoch = max(1, int(np.ceil(len(inputs) * recipe.epoch_frames / recipe.batch)))
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe.lr, total_steps=recipe.epochs * steps_per_epoch,
                                                pct_start=0.15)
    q_all = torch.from_numpy(sord_targets(y, len(SCORE_CLASSES))).float()
    w_all = torch.from_numpy(_class_weights(y, recipe.balanced)).float()
    six_t = torch.as_tensor(np.asarray(six, int))
    for epoch in range(recipe.epochs):
        # Every clip gives epoch_frames frames per epoch: clips with long loops do not dominate.
        pairs = np.array([(c, f) for c, x in enumerate(inputs)
                          for f in rng.choice(len(x), size=min(recipe.epoch_frames, len(x)), replace=False)])
        pairs = pairs[rng.permutation(len(pairs))]
        model.train()
        running = 0.0
        for s in range(0, len(pairs), recipe.batch):
            chunk = pairs[s:s + recipe.batch]
            if len(chunk) < 2:  # batch norm needs two samples
                continue
            x = torch.stack([inputs[c][f] for c, f in chunk])
            flip = torch.from_numpy(rng.random(len(chunk)) < 0.5)
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
            idx = torch.from_numpy(chunk[:, 0])
            loss = _loss(model, recipe, x, q_all[idx], six_t[idx], w_all[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            if sched.last_epoch < sched.total_steps:
                sched.step()
            running += float(loss.detach()) * len(chunk)
        if log:
            log(f"  epoch {epoch + 1}/{recipe.epochs}: loss {running / max(len(pairs), 1):.4f}")
    return model.eval()


def predict_clips(model: nn.Module, recipe: NetRecipe, inputs: Sequence[torch.Tensor],
                  uninorm: UninormAggregator | None = None) -> list[dict[str, object]]:
    """:func:`clip_prediction` of every clip."""
    return [clip_prediction(frame_probs(model, recipe, x), uninorm) for x in inputs]


def cross_validate_net(recipe: NetRecipe, inputs: Sequence[torch.Tensor], y: np.ndarray, six: np.ndarray,
                       groups: Sequence[str], seeds: Sequence[int] = (0, 1, 2), k: int = 5,
                       eval_mask: np.ndarray | None = None,
                       log: Callable[[str], None] | None = None) -> dict[str, object]:
    """Patient-grouped k-fold CV repeated over seeds, on the default scorer's folds
    (``cv_splits``); the block has the same keys as the default scorer's CV, plus the mean
    training seconds per fold."""
    y = np.asarray(y, int)
    em = np.ones(len(y), bool) if eval_mask is None else np.asarray(eval_mask, bool)
    per_seed: list[dict[str, object]] = []
    seconds: list[float] = []
    for seed in seeds:
        outs: dict[int, dict[str, object]] = {}
        for fold, (tr, te) in enumerate(cv_splits(y, groups, em, k, seed)):
            t0 = time.perf_counter()
            model, uninorm = fit_net(recipe, [inputs[i] for i in tr], y[tr], np.asarray(six)[tr], seed * 100 + fold)
            seconds.append(time.perf_counter() - t0)
            preds = predict_clips(model, recipe, [inputs[i] for i in te], uninorm)
            outs.update({int(i): p for i, p in zip(te, preds, strict=True)})
            if log:
                log(f"seed {seed} fold {fold + 1}/{k}: {len(tr)} training clips, {seconds[-1]:.0f} s")
        rep = seed_report(y, np.nonzero(em)[0], outs)
        per_seed.append(rep)
        if log:
            log(f"seed {seed}: acc {rep['accuracy']:.3f} within1 {rep['within1']:.3f} spearman {rep['spearman']:.3f} "
                f"qwk {rep['qwk']:.3f} ECE {rep['ece']:.3f}")
    summary = cv_summary(per_seed, seeds, k, int(em.sum()), len(set(np.asarray(groups)[em])))
    summary["fold_training_seconds"] = float(np.mean(seconds))
    return summary
