"""The heat map of the model that produced the clip score (the clip viewer's overlay).

The default weights score a clip with their *clip heads* (recipe ``hires``): logistic
regressions read the 224-px hires descriptor (``hires_frames`` evenly spaced frames and the
clip's three summary images through the frozen backbone, each tapped map pooled by global mean
and max, then mean and std over the frames) and vote (:func:`~scoring.core.inference.bundle.vote`).
The map explains exactly that:

* target: the shown clip score ``c``. The class score is the logit (log-odds) of the clip
  probability the bundle shows for it, ``log(p / (1 - p))``, ``p`` the mean of the softmax
  probabilities of the members that voted for ``c`` (all members when none did). The vote's
  choice of members is held fixed: it is discrete, the probabilities are not;
* its gradient flows through the members' weights and standardisation, the mean / std over
  frames and the mean / max pooling into every tapped map (``hires_taps``) of every image the
  heads read;
* the map is gradient x activation summed over channels: at each place of each tapped map, the
  first-order part of the logit that place carries (the parts of all places add up to the
  first-order effect of the whole maps).
  Each tap's map, as a density per canvas pixel, is upsampled to the canvas and the taps are
  summed; the positive part (evidence FOR the shown score) is shown, every read frame on one
  scale, so a frame with little evidence stays faint.

Why not Grad-CAM++ (what the frame-head overlay used): on these heads its map is no better than
chance. Blurring the top 10 % of the sector of each read frame by the map, against blurring as
many pixels of random smooth regions (8 draws), on 14 real COVID-BLUeS clips: gradient x
activation lowered the target logit more on 14 of 14 (mean drop 0.16 against 0.05), Grad-CAM++
(per tap, same target) on 7 of 14 (0.05 against 0.05); on the 4 phantoms 3 of 4 against 0 of 4.
``tests/scoring/core/inference/test_gradcam.py`` pins that check.

The summary images (temporal mean, max and std of the WHOLE clip) enter the descriptor too;
their share of the positive evidence is reported beside the frames' maps.

Weights whose clip score aggregates the frame head (``argmax_mean``, ``max_argmax``, ``mode``,
``uninorm``) are explained on every frame by the same map of the frame head's logit of the
shown score (hand-crafted features enter that head as constants: not differentiable). Maps go
back through the crop / resize / pad of the preprocessing onto the ORIGINAL frame grid; outside
the ultrasound sector they are 0.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from scoring.core.features.featurizer import Featurizer, hires_frame_indices
from scoring.core.features.handcrafted import handcrafted_features
from scoring.core.features.preprocess import Geometry, canvas_to_original
from scoring.core.features.recipe import Recipe
from scoring.core.inference.aggregate import AGGREGATORS
from scoring.core.inference.bundle import LinearModel, vote

#: Which model a clip score comes from (:func:`explained_model`).
CLIP_HEADS = "clip-heads"
FRAME_HEAD = "frame-head"


def score_members(recipe: Recipe) -> tuple[str, ...]:
    """The clip heads whose probabilities make the clip score (the voters, or the one member)."""
    return tuple(recipe.members) if recipe.aggregator == "ensemble" else (recipe.aggregator,)


def explained_model(recipe: Recipe) -> str:
    """``CLIP_HEADS`` (hires members vote, or one decides), ``FRAME_HEAD`` (a frame aggregator),
    or ``ValueError`` (members on the 112-px clip descriptor: no explanation implemented)."""
    if recipe.aggregator in AGGREGATORS:
        return FRAME_HEAD
    names = score_members(recipe)
    if recipe.hires_size and all(n.startswith("hr:") for n in names):
        return CLIP_HEADS
    raise ValueError(f"clip score from {list(names)} (aggregator {recipe.aggregator!r}): only the hires clip "
                     "heads and the frame aggregators have a heat map")


def read_frames(recipe: Recipe, n_frames: int) -> list[int]:
    """The distinct frames (ascending) of an ``n_frames`` clip that the model producing the clip
    score read: the hires view's evenly spaced frames, or every frame for a frame aggregator."""
    if explained_model(recipe) == FRAME_HEAD:
        return list(range(n_frames))
    return sorted({int(i) for i in hires_frame_indices(n_frames, recipe.hires_frames)})


@dataclass(frozen=True)
class ClipGradcam:
    """A clip score's explanation as the viewer shows it (maps on the original frame grid)."""

    model: str  # CLIP_HEADS or FRAME_HEAD
    indices: tuple[int, ...]  # the frames that model read, ascending
    maps: tuple[np.ndarray, ...]  # float32 [H,W] in [0,1] per index, one scale for all of them
    target: int  # the clip score explained
    members: tuple[str, ...] = ()  # the clip heads whose probabilities make the clip probability
    logit: float | None = None  # the clip heads' logit of the target (None for a frame head)
    summary_share: float | None = None  # share of the positive evidence in the summary images


@dataclass(frozen=True)
class ClipAttribution:
    """The clip heads' explanation of one clip on its hires canvas."""

    indices: tuple[int, ...]  # the distinct frames the clip heads read, ascending
    canvas_maps: np.ndarray  # float32 [len(indices), S, S] in [0,1], one scale for all frames
    target: int  # the clip score explained
    logit: float  # log-odds of the target's clip probability, as the bundle combines the members
    probs: np.ndarray  # float [4]: the clip probabilities (mean over ``members``)
    members: tuple[str, ...]  # the members whose probabilities make the clip probability
    summary_share: float  # share of the positive evidence in the summary images


@dataclass(frozen=True)
class ClipLogit:
    """:func:`clip_logit`'s answer."""

    logit: torch.Tensor  # scalar
    maps: list[torch.Tensor]  # per hires tap: [n_distinct + 3, C, h, w]
    probs: np.ndarray  # the clip probabilities (mean over ``members``)
    target: int
    members: tuple[str, ...]


def hires_images(xh: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What the clip heads read of a hires view ``xh`` [T,S,S], picked as :meth:`Featurizer.hires`
    picks it: (distinct read frames, the row of each of the ``k`` read slots among them, images
    [n_distinct + 3, S, S] = those frames, then the three summary images)."""
    idx = hires_frame_indices(len(xh), k)
    uniq, slots = np.unique(idx, return_inverse=True)
    images = np.concatenate([xh[uniq], Featurizer.summary_images(xh)], 0).astype(np.float32)
    return uniq, slots.reshape(-1), images


def _descriptor(maps: Sequence[torch.Tensor], slots: np.ndarray) -> torch.Tensor:
    """Torch twin of :meth:`Featurizer.hires` for one clip: the hires descriptor from the tapped
    maps of the distinct read frames followed by the three summary images."""
    k = len(slots)
    n = int(slots.max()) + 1
    rows = torch.as_tensor(np.concatenate([slots, n + np.arange(3)]), dtype=torch.long, device=maps[0].device)
    parts = []
    for m in maps:
        a = torch.cat([m.mean((2, 3)), m.amax((2, 3))], 1)[rows]
        var = a[:k].var(0, unbiased=False)
        # sqrt has no gradient at 0 (identical frames, a still image): clamped there (value <= 1e-6).
        parts += [a[:k].mean(0), var.clamp_min(1e-12).sqrt(), a[k:].reshape(-1)]
    return torch.cat(parts)


def _logits(head: LinearModel, x: torch.Tensor) -> torch.Tensor:
    """Torch twin of :meth:`LinearModel.__call__` (standardise, then affine), on ``x``'s device."""
    if head.cols is not None:
        x = x[..., torch.as_tensor(head.cols, device=x.device)]
    t = [torch.from_numpy(np.asarray(v, np.float32)).to(x.device) for v in (head.mu, head.sd, head.w, head.b)]
    return ((x - t[0]) / t[1]) @ t[2].T + t[3]


def _log_odds(p: torch.Tensor) -> torch.Tensor:
    p = p.clamp(1e-12, 1 - 1e-12)
    return torch.log(p) - torch.log1p(-p)


def clip_logit(featurizer: Featurizer, heads: Mapping[str, LinearModel], names: Sequence[str],
               images: np.ndarray, slots: np.ndarray, target: int | None = None) -> ClipLogit:
    """The clip heads' logit of ``target`` (default: the bundle's vote) for ``images`` (the read
    frames and summary images of :func:`hires_images`). Differentiable in the tapped maps under
    ``torch.enable_grad``."""
    x = featurizer.to_input(images)
    if torch.is_grad_enabled():
        x.requires_grad_(True)  # the graph reaches the maps although the backbone is frozen
    maps = featurizer.model.forward_features(x, featurizer.recipe.hires_taps)
    d = _descriptor(maps, slots)
    probs = torch.stack([torch.softmax(_logits(heads[n], d).double(), -1) for n in names])
    pn = probs.detach().cpu().numpy()
    if target is None:
        target = vote(list(pn))[1]
    voters = [i for i, p in enumerate(pn) if int(np.argmax(p)) == target] or list(range(len(names)))
    p = probs[voters].mean(0)
    return ClipLogit(_log_odds(p[target]), maps, p.detach().cpu().numpy(), int(target), tuple(names[i] for i in voters))


def _backward(logit: torch.Tensor, featurizer: Featurizer, maps: Sequence[torch.Tensor]) -> None:
    for m in maps:
        m.retain_grad()
    featurizer.model.zero_grad(set_to_none=True)
    logit.backward()


def contribution_maps(maps: Sequence[torch.Tensor], size: int) -> torch.Tensor:
    """Gradient x activation of tapped maps (after ``backward``), summed over channels, as a
    density per pixel of a ``size`` canvas, summed over the taps: signed [N, size, size], on the
    maps' device."""
    total = torch.zeros((maps[0].shape[0], size, size), device=maps[0].device)
    for m in maps:
        acts = m.detach().float()
        grads = m.grad.detach().float() if m.grad is not None else torch.zeros_like(acts)
        cell = (acts * grads).sum(1, keepdim=True) * (acts.shape[2] * acts.shape[3]) / (size * size)
        total += F.interpolate(cell, size=(size, size), mode="bilinear", align_corners=False)[:, 0]
    return total


def one_scale(maps: np.ndarray) -> np.ndarray:
    """Positive part of maps [N,...], divided by their common maximum (finite, in [0,1])."""
    m = np.clip(np.nan_to_num(np.asarray(maps, np.float32), nan=0.0, posinf=0.0, neginf=0.0), 0.0, None)
    top = float(m.max()) if m.size else 0.0
    return (m / top).astype(np.float32) if top > 0 else np.zeros_like(m, np.float32)


def clip_attribution(featurizer: Featurizer, heads: Mapping[str, LinearModel], names: Sequence[str],
                     xh: np.ndarray, target: int | None = None) -> ClipAttribution:
    """The clip heads' map (voting as the bundle does) for the hires view ``xh`` [T,S,S] of a clip:
    one map per frame they read, on the hires canvas."""
    uniq, slots, images = hires_images(xh, featurizer.recipe.hires_frames)
    n = len(uniq)
    with torch.enable_grad():
        out = clip_logit(featurizer, heads, names, images, slots, target)
        _backward(out.logit, featurizer, out.maps)
    contrib = contribution_maps(out.maps, int(xh.shape[-1])).cpu().numpy()
    pos = np.clip(contrib, 0.0, None).sum((1, 2))
    return ClipAttribution(
        indices=tuple(int(i) for i in uniq), canvas_maps=one_scale(contrib[:n]), target=out.target,
        logit=float(out.logit.detach()), probs=out.probs, members=out.members,
        summary_share=float(pos[n:].sum() / pos.sum()) if pos.sum() > 0 else 0.0)


def frame_attribution(featurizer: Featurizer, head: LinearModel, x: np.ndarray, target: int) -> np.ndarray:
    """The frame head's map of every frame of the model input ``x`` [T,S,S] for class ``target``
    (the clip score its aggregator gave): [T,S,S] on the canvas, one scale."""
    recipe = featurizer.recipe
    hand = handcrafted_features(x) if recipe.hand else np.zeros((len(x), 0), np.float32)
    out = []
    for i in range(0, len(x), featurizer.batch):
        inp = featurizer.to_input(x[i : i + featurizer.batch])
        with torch.enable_grad():
            inp.requires_grad_(True)
            maps = featurizer.model.forward_features(inp, recipe.taps)
            full = torch.cat([featurizer.pool(maps), torch.from_numpy(hand[i : i + featurizer.batch]).to(inp.device)], 1)
            logit = _log_odds(torch.softmax(_logits(head, full).double(), -1)[:, target]).sum()
            _backward(logit, featurizer, maps)  # frames are independent: one backward for the batch
        out.append(contribution_maps(maps, int(x.shape[-1])).cpu().numpy())
    return one_scale(np.concatenate(out, 0)) if out else np.zeros((0,) + x.shape[1:], np.float32)


def to_original(canvas_maps: np.ndarray, geom: Geometry) -> list[np.ndarray]:
    """Canvas maps [N,S,S] on one scale -> maps on the original frame grid (0 outside the sector),
    float32 in [0,1], still on one scale."""
    return list(one_scale(np.stack([canvas_to_original(c, geom) for c in canvas_maps]))) if len(canvas_maps) else []
