"""Pixel-level training modes: ``finetune`` (last backbone blocks) and ``distill`` (student).

Both end like the frozen recipe - heads fitted on the (now adapted) backbone's features - so
the scorer, the bundle format and the aggregators are shared; the adapted backbone blocks
travel inside the weights file as ``backbone_state`` (a partial state dict, a few hundred kB)
and are applied on top of the ImageNet checkpoint.

* ``finetune``: blocks ``>= unfreeze_from`` of the truncated Lite0 plus a linear SORD head are
  trained on augmented frames (clip label as weak frame label); BatchNorm statistics stay
  frozen (batches of 2-core CPU training are small and clip-correlated).
* ``distill``: a cheaper student (Lite0 truncated after block 4, smaller input) learns to
  reproduce the teacher's (default weights) per-frame probabilities (KL) on augmented frames.

Augmentation (only these modes see pixels): rotation, translation, scaling, horizontal flip,
contrast (gamma), gain, blur and speckle-like noise.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import math
import sys
import time
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from scoring.core.device import env_device
from scoring.core.features.featurizer import Featurizer
from scoring.core.features.preprocess import normalise_intensity
from scoring.core.features.recipe import Recipe
from scoring.core.inference.scorer import load_scorer
from scoring.core.labels import N_CLASSES
from scoring.core.models.lite0 import LITE_MEAN, LITE_STD, EfficientNetLite0, load_lite0
from scoring.core.training.caches import cached_frames, featurize_records
from scoring.core.training.datasets import ClipRecord
from scoring.core.training.fitting import class_weights
from scoring.core.training.run import finish_training, training_records
from scoring.core.training.sord import soft_cross_entropy, sord_loss


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random geometric + photometric augmentation of a batch [N,1,S,S] in [0,1]."""
    n = x.shape[0]

    def u(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(n, generator=gen)

    ang = u(-10, 10) * math.pi / 180
    sc = u(0.9, 1.1)
    flip = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0)
    tx, ty = u(-0.06, 0.06), u(-0.06, 0.06)
    cos, sin = torch.cos(ang) / sc, torch.sin(ang) / sc
    theta = torch.stack([torch.stack([cos * flip, -sin, tx], 1), torch.stack([sin * flip, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    y = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    y = y.clamp(0, 1) ** u(0.8, 1.25)[:, None, None, None]  # contrast
    y = y * u(0.8, 1.2)[:, None, None, None]  # gain
    if torch.rand(1, generator=gen).item() < 0.3:  # mild blur
        k = torch.tensor([0.25, 0.5, 0.25])
        y = F.conv2d(F.pad(y, (1, 1, 1, 1), mode="replicate"), (k[:, None] * k[None, :])[None, None])
    noise = torch.randn(y.shape, generator=gen) * u(0.0, 0.03)[:, None, None, None]
    return (y * (1 + noise)).clamp(0, 1)


def _frames(records: Sequence[ClipRecord], recipe: Recipe) -> list[np.ndarray]:
    cfg = recipe.preprocess()
    return [cached_frames(r.path, cfg, 120) for r in records]


def _batch(clips: list[np.ndarray], idx: Sequence[int], per_clip: int, rng: np.random.Generator,
           intensity: str) -> tuple[torch.Tensor, np.ndarray]:
    xs, owners = [], []
    for i in idx:
        c = clips[i]
        pick = rng.choice(len(c), size=min(per_clip, len(c)), replace=False)
        x = normalise_intensity(c.astype(np.float32) / 255.0, intensity)[pick]
        xs.append(x)
        owners += [i] * len(pick)
    return torch.from_numpy(np.concatenate(xs))[:, None], np.asarray(owners)


def partial_state(model: torch.nn.Module, first_block: int) -> dict[str, torch.Tensor]:
    """State of blocks >= first_block (what a weights file must carry)."""
    keep = {}
    for k, v in model.state_dict().items():
        if k.startswith("_blocks."):
            if int(k.split(".")[1]) >= first_block:
                keep[k] = v.detach().clone()
        elif first_block == 0:
            keep[k] = v.detach().clone()
    return keep


def state_tag(state: dict[str, torch.Tensor]) -> str:
    """Short content hash of a partial backbone state (keys the feature cache)."""
    buf = io.BytesIO()
    torch.save({k: state[k] for k in sorted(state)}, buf)
    return hashlib.sha256(buf.getvalue()).hexdigest()[:16]


def trainable_lite0(n_blocks: int, unfreeze_from: int) -> EfficientNetLite0:
    """Truncated Lite0 (unfused) whose blocks ``>= unfreeze_from`` learn; in eval mode, because
    batches of 2-core CPU training are small and clip-correlated, so BatchNorm statistics stay
    frozen. Fine-tuning and the self-supervised pretraining (:mod:`scoring.core.training.ssl`) share it."""
    model = load_lite0(n_blocks=n_blocks)
    for name, p in model.named_parameters():
        blk = int(name.split(".")[1]) if name.startswith("_blocks.") else -1
        p.requires_grad = blk >= unfreeze_from
    return model.eval()


def train_backbone(clips: list[np.ndarray], y: np.ndarray, recipe: Recipe, seed: int, *, epochs: int = 3,
                   per_clip: int = 4, clips_per_batch: int = 8, unfreeze_from: int = 5,
                   teacher_probs: list[np.ndarray] | None = None, lr: float = 3e-4,
                   log: bool = True, device: torch.device | None = None) -> dict[str, torch.Tensor]:
    """Fine-tune (or distil into) the truncated Lite0 of ``recipe`` on ``device`` (default:
    ``LUSWEB_DEVICE``; augmentation stays on the CPU, seeded); return its partial state (CPU)."""
    dev = env_device() if device is None else torch.device(device)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    fz = Featurizer(recipe)
    model = trainable_lite0(max(recipe.taps) + 1, unfreeze_from).to(dev)
    head = torch.nn.Linear(fz.cnn_dim, N_CLASSES).to(dev)
    params = [p for p in model.parameters() if p.requires_grad] + list(head.parameters())
    opt = torch.optim.Adam(params, lr=lr)
    cw = torch.tensor(class_weights(y), dtype=torch.float32, device=dev)
    t0 = time.time()
    for ep in range(epochs):
        order = rng.permutation(len(clips))
        tot = 0.0
        for s in range(0, len(order), clips_per_batch):
            idx = [int(i) for i in order[s : s + clips_per_batch]]
            x, owners = _batch(clips, idx, per_clip, rng, recipe.intensity)
            x = augment(x, gen)
            inp = ((x.to(dev) - LITE_MEAN) / LITE_STD).expand(-1, 3, -1, -1)
            feat = fz.pool(model.forward_features(inp, recipe.taps))
            logits = head(feat)
            if teacher_probs is None:
                labels = torch.from_numpy(y[owners]).to(dev)
                loss = sord_loss(logits, labels, weight=cw[labels])
            else:
                q = torch.from_numpy(np.stack([teacher_probs[o].mean(0) for o in owners]).astype(np.float32)).to(dev)
                loss = soft_cross_entropy(logits, q)
            opt.zero_grad()
            loss.backward()
            opt.step()
            tot += float(loss.detach()) * len(idx)
        if log:
            print(f"epoch {ep + 1}/{epochs} loss {tot / len(order):.4f} ({time.time() - t0:.0f}s)",
                  file=sys.stderr, flush=True)
    return partial_state(model.to("cpu"), unfreeze_from)


def main(args: argparse.Namespace) -> int:
    """``train --mode finetune|distill``: adapt the backbone, then fit heads as ``frozen``."""
    torch.set_num_threads(2)
    recs = training_records(args.data, args.with_pocus)
    if args.limit:
        recs = recs[: args.limit]
    y = np.array([r.score for r in recs])
    if args.mode == "finetune":
        recipe = Recipe(size=args.size, aggregator=args.aggregator, clip_c=args.clip_c)
        state = train_backbone(_frames(recs, recipe), y, recipe, args.seed)
    else:
        teacher = load_scorer(None)
        tfeats = featurize_records(recs, teacher.recipe)
        tprobs = [np.asarray(teacher.bundle.predict(f)["frame_probs"]) for f in tfeats]
        recipe = Recipe(size=min(args.size, 96), taps=(2, 4), aggregator=args.aggregator, clip_c=args.clip_c)
        state = train_backbone(_frames(recs, recipe), y, recipe, args.seed, unfreeze_from=0,
                               teacher_probs=tprobs)
    recipe.backbone_tag = state_tag(state)
    return finish_training(args, recipe, recs, backbone_state=state)
