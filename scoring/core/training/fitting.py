"""Fitting a bundle's heads on precomputed clip features (see :mod:`scoring.core.features.recipe`).

The frame head (linear; severity with the SORD loss of :mod:`scoring.core.training.sord`,
findings with masked BCE) and the clip heads (logistic regressions, ridge) are fitted here;
cross-validation and label-noise filtering are in :mod:`scoring.core.training.cv`.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from scoring.core.device import env_device
from scoring.core.features.featurizer import clip_descriptor, cnn_columns, hires_columns
from scoring.core.features.handcrafted import HAND_NAMES
from scoring.core.features.recipe import Recipe
from scoring.core.inference.aggregate import UninormAggregator
from scoring.core.inference.bundle import Bundle, LinearModel, softmax
from scoring.core.labels import FINDINGS, N_CLASSES
from scoring.core.models.lite0 import LITE0_BLOCK_CHANNELS
from scoring.core.training.sord import sord_loss


def _standardiser(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu = x.mean(0)
    sd = x.std(0)
    sd[sd < 1e-6] = 1.0
    return mu.astype(np.float32), sd.astype(np.float32)


def class_weights(y: np.ndarray, n_classes: int = N_CLASSES, mode: str = "balanced") -> np.ndarray:
    """Weight of each class (float64 [n_classes]); index it with the labels for sample weights.

    ``balanced``: n_samples / (n_classes * count), as scikit-learn's, 0 for a class absent from
    ``y`` (the data are skewed towards low scores); any other mode: all ones.
    """
    if mode != "balanced":
        return np.ones(n_classes)
    cnt = np.bincount(y, minlength=n_classes).astype(float)
    return np.where(cnt > 0, len(y) / (n_classes * np.maximum(cnt, 1)), 0.0)


def fit_logreg(x: np.ndarray, y: np.ndarray, c: float, class_weight: str, seed: int,
               cols: np.ndarray | None = None) -> LinearModel:
    """Multinomial logistic regression (scikit-learn lbfgs) copied into a LinearModel."""
    xs = x[:, cols] if cols is not None else x
    mu, sd = _standardiser(xs)
    cw = class_weights(y, mode=class_weight)
    m = LogisticRegression(C=c, max_iter=3000, random_state=seed)
    m.fit((xs - mu) / sd, y, sample_weight=cw[y])
    w = np.zeros((N_CLASSES, xs.shape[1]), np.float32)
    b = np.full(N_CLASSES, -30.0, np.float32)  # a class absent from training gets ~0 probability
    for j, cl in enumerate(m.classes_):
        w[int(cl)] = m.coef_[j] if len(m.classes_) > 2 else (m.coef_[0] if j == 1 else -m.coef_[0])
        b[int(cl)] = m.intercept_[j] if len(m.classes_) > 2 else (m.intercept_[0] if j == 1 else -m.intercept_[0])
    return LinearModel(mu, sd, w, b, cols)


def fit_ridge(x: np.ndarray, y: np.ndarray, alpha: float, class_weight: str) -> LinearModel:
    """Ridge regression of the score (an ordinal regressor); output [N,1] expected score."""
    mu, sd = _standardiser(x)
    z = (x - mu) / sd
    sw = class_weights(y, mode=class_weight)[y]
    ym = float((sw * y).sum() / sw.sum())
    zw = z * np.sqrt(sw)[:, None]
    yw = (y - ym) * np.sqrt(sw)
    # Dual form: n << d, so solve the n x n system.
    k = zw @ zw.T
    a = np.linalg.solve(k + alpha * np.eye(len(y)), yw)
    w = (zw.T @ a)[None].astype(np.float32)
    return LinearModel(mu, sd, w, np.array([ym], np.float32))


def fit_frame_head(feats: Sequence[np.ndarray], y: np.ndarray, findings: np.ndarray, recipe: Recipe,
                   seed: int, steps: int = 250, max_frames: int = 16,
                   device: torch.device | None = None) -> tuple[LinearModel, LinearModel]:
    """Per-frame severity (SORD targets of the clip label) + findings (masked BCE) heads.

    Every clip has the same total weight (1/T per frame) times its class weight, so long
    clips do not dominate; at most ``max_frames`` evenly spaced frames per clip are used
    (consecutive frames are nearly identical, and it keeps a CV fold to seconds). Trained
    full-batch with Adam and an L2 penalty ``frame_c``, on ``device`` (default: ``LUSWEB_DEVICE``).
    """
    dev = env_device() if device is None else torch.device(device)
    torch.manual_seed(seed)
    feats = [f[np.unique(np.linspace(0, len(f) - 1, min(len(f), max_frames)).round().astype(int))] for f in feats]
    x = np.concatenate(feats, 0)
    mu, sd = _standardiser(x)
    xt = torch.from_numpy((x - mu) / sd).to(dev)
    lens = [len(f) for f in feats]
    yi = np.repeat(y, lens)
    cw = class_weights(y, mode=recipe.class_weight)
    w = np.repeat(1.0 / np.asarray(lens, float), lens) * cw[yi]
    w = torch.from_numpy((w / w.mean()).astype(np.float32)).to(dev)
    yt = torch.from_numpy(yi).to(dev)
    fy = torch.from_numpy(np.repeat(findings, lens, axis=0).astype(np.float32)).to(dev)
    fmask = (fy >= 0).float()
    lin = torch.nn.Linear(x.shape[1], N_CLASSES).to(dev)  # initialised on the CPU: same seeds, same start
    fin = torch.nn.Linear(x.shape[1], len(FINDINGS)).to(dev)
    opt = torch.optim.Adam([*lin.parameters(), *fin.parameters()], lr=0.01, weight_decay=0.0)
    for _ in range(steps):
        opt.zero_grad()
        loss = sord_loss(lin(xt), yt, recipe.sord_alpha, recipe.sord_zero, weight=w)
        if fmask.sum() > 0:
            bce = torch.nn.functional.binary_cross_entropy_with_logits(fin(xt), fy.clamp_min(0), reduction="none")
            loss = loss + 0.5 * (bce * fmask).sum() / fmask.sum()
        l2 = lin.weight.pow(2).sum() + fin.weight.pow(2).sum()
        (loss + recipe.frame_c * l2).backward()
        opt.step()
    sev = LinearModel(mu, sd, lin.weight.detach().cpu().numpy(), lin.bias.detach().cpu().numpy())
    fnd = LinearModel(mu, sd, fin.weight.detach().cpu().numpy(), fin.bias.detach().cpu().numpy())
    return sev, fnd


def clip_score_reads_frame_heads(recipe: Recipe) -> bool:
    """Whether the recipe's clip score aggregates the frame head's outputs (uninorm, mean, ...);
    the clip heads (``lr_*``, ``ridge``, ``hr:*`` and their ensemble) read features only."""
    clip_heads = ("ensemble", "lr_all", "lr_cnn", "ridge")
    return not (recipe.aggregator in clip_heads or recipe.aggregator.startswith("hr:"))


def _blank_heads(frame_dim: int) -> tuple[LinearModel, LinearModel]:
    """Frame heads that say nothing (uniform probabilities, findings at 0.5)."""
    mu, sd = np.zeros(frame_dim, np.float32), np.ones(frame_dim, np.float32)
    return (LinearModel(mu, sd, np.zeros((N_CLASSES, frame_dim), np.float32), np.zeros(N_CLASSES, np.float32)),
            LinearModel(mu, sd, np.zeros((len(FINDINGS), frame_dim), np.float32), np.zeros(len(FINDINGS), np.float32)))


def fit_bundle(feats: Sequence[dict[str, np.ndarray]], y: np.ndarray, findings: np.ndarray,
               recipe: Recipe, seed: int = 0, cnn_dim: int | None = None, frame_heads: bool = True) -> Bundle:
    """Fit all heads on the given clips (features precomputed).

    ``frame_heads=False`` (cross-validation of the clip score): when the clip score does not read
    the frame heads (:func:`clip_score_reads_frame_heads`) they are left blank - the clip score and
    its probabilities are exactly those of the full fit, in a fraction of the time.
    """
    y = np.asarray(y, int)
    if frame_heads or clip_score_reads_frame_heads(recipe):
        sev, fnd = fit_frame_head([f["frame"] for f in feats], y, findings, recipe, seed)
    else:
        sev, fnd = _blank_heads(feats[0]["frame"].shape[1])
    b = Bundle(recipe, sev, fnd)
    x = np.stack([clip_descriptor(f) for f in feats])
    frame_dim = feats[0]["frame"].shape[1]
    summary_dim = feats[0]["summary"].shape[0]
    if cnn_dim is None:
        cnn_dim = frame_dim - (len(HAND_NAMES) if recipe.hand else 0)
    need = set(recipe.members) if recipe.aggregator == "ensemble" else set()
    if recipe.aggregator in ("lr_all", "lr_cnn", "ridge") or recipe.aggregator.startswith("hr:"):
        need.add(recipe.aggregator)
    if "lr_all" in need:
        b.clip_members["lr_all"] = fit_logreg(x, y, recipe.clip_c, recipe.class_weight, seed)
    if "lr_cnn" in need:
        cols = cnn_columns(recipe, cnn_dim, frame_dim, summary_dim)
        b.clip_members["lr_cnn"] = fit_logreg(x, y, recipe.clip_c, recipe.class_weight, seed, cols)
    if "ridge" in need:
        b.clip_members["ridge"] = fit_ridge(x, y, recipe.ridge_alpha, recipe.class_weight)
    hr_need = sorted(n for n in need if n.startswith("hr:"))
    if hr_need:
        xh = np.stack([f["hires"] for f in feats])
        ch = LITE0_BLOCK_CHANNELS
        for name in hr_need:
            b.clip_members[name] = fit_logreg(xh, y, recipe.hires_c, recipe.class_weight, seed,
                                              hires_columns(recipe, ch, name))
    if recipe.aggregator == "uninorm":
        probs = [softmax(sev(f["frame"])) for f in feats]
        b.uninorm = UninormAggregator(N_CLASSES).fit(probs, list(y), seed=seed)
    return b
