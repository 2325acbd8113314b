"""THE featuriser: frozen truncated EfficientNet-Lite0 + pooling + hand-crafted features.

The recipe's front end, shared by the scorer, training and the pixel-level training modes.
CNN features: the backbone truncated after block ``max(taps)``; every tapped map is pooled by
its global mean and max and averaged over three depth bands (top / middle / bottom thirds),
because where a texture sits (just below the pleura vs deep) matters for LUS. The hires
descriptor (the clip heads' 224-px view) and the clip descriptor are laid out here too, with
the column maps the clip heads read.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from scoring.core.features.handcrafted import HAND_NAMES, handcrafted_features
from scoring.core.features.recipe import Recipe
from scoring.core.models.lite0 import LITE_MEAN, LITE_STD, fuse_bn_, load_lite0


class Featurizer:
    """Frozen truncated Lite0 + pooling + hand-crafted features (the recipe's front end)."""

    POOLS = ("mean", "max", "band0", "band1", "band2")

    # 16 images per forward pass: measured ~2x faster than 64 on 2 CPU cores (cache-sized
    # activations; benchmarks/bench_scoring.py).
    def __init__(self, recipe: Recipe, batch: int = 16,
                 backbone_state: dict[str, torch.Tensor] | None = None) -> None:
        """``backbone_state``: adapted blocks (finetune / distill) applied over ImageNet Lite0."""
        self.recipe = recipe
        self.batch = batch
        deepest = max(recipe.taps + (recipe.hires_taps if recipe.hires_size else ()))
        base = load_lite0(n_blocks=deepest + 1)
        if backbone_state:
            res = base.load_state_dict(backbone_state, strict=False)
            if res.unexpected_keys:
                raise RuntimeError(f"backbone_state has unexpected keys {res.unexpected_keys[:5]}")
        self.model = fuse_bn_(base).to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        ch = self.model.block_channels
        self.cnn_dim = sum(ch[t] for t in recipe.taps) * len(self.POOLS)
        self.frame_dim = self.cnn_dim + (len(HAND_NAMES) if recipe.hand else 0)
        self.hires_dim = hires_dim(recipe, ch)
        self.device = torch.device("cpu")
        self.half: torch.dtype | None = None  # autocast dtype of the feature passes (None: float32)

    def to(self, device: torch.device, half: torch.dtype | None = None) -> Featurizer:
        """Place the backbone on ``device``; ``half``: run the feature passes under autocast in
        that dtype (Grad-CAM++ always runs in float32)."""
        self.model.to(device)
        self.device = torch.device(device)
        self.half = half
        return self

    def to_input(self, x: np.ndarray) -> torch.Tensor:
        """Model-input images float [N,S,S] (grey, copied to the 3 channels) or [N,3,S,S] -> the
        normalised 3-channel batch (channels last), on the backbone's device."""
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self.device)
        grey = t.ndim == 3
        t = (t[:, None] if grey else t) - LITE_MEAN
        t = t / LITE_STD
        return (t.expand(-1, 3, -1, -1) if grey else t).contiguous(memory_format=torch.channels_last)

    def _forward(self, x: torch.Tensor, taps: Sequence[int]) -> list[torch.Tensor]:
        """The tapped maps, in float32 (under autocast when ``half`` is set)."""
        if self.half is None:
            return list(self.model.forward_features(x, taps))
        with torch.autocast(self.device.type, dtype=self.half):
            return [m.float() for m in self.model.forward_features(x, taps)]

    def pool(self, maps: list[torch.Tensor]) -> torch.Tensor:
        """[N, cnn_dim] from the tapped maps (mean, max, three depth bands per map)."""
        parts = []
        for m in maps:
            parts.append(m.mean((2, 3)))
            parts.append(m.amax((2, 3)))
            parts.extend(c.mean((2, 3)) for c in torch.tensor_split(m, 3, dim=2))
        return torch.cat(parts, 1)

    @torch.inference_mode()
    def cnn(self, images: np.ndarray) -> np.ndarray:
        """CNN features of model-input images float [N,S,S] -> [N, cnn_dim]."""
        out = []
        for i in range(0, len(images), self.batch):
            maps = self._forward(self.to_input(images[i : i + self.batch]), self.recipe.taps)
            out.append(self.pool(maps).cpu())
        if not out:
            return np.zeros((0, self.cnn_dim), np.float32)
        return torch.cat(out).numpy().astype(np.float32)

    @staticmethod
    def summary_images(x: np.ndarray) -> np.ndarray:
        """Temporal mean, max and (max-normalised) std images of a clip: [3,S,S]."""
        sd = x.std(0)
        sd = sd / (sd.max() + 1e-6)
        return np.stack([x.mean(0), x.max(0), sd]).astype(np.float32)

    def hires(self, views: Sequence[np.ndarray], channels: Sequence[np.ndarray] | None = None) -> list[np.ndarray]:
        """Hires descriptors [hires_dim] of clips given on the large canvas (float [T,S,S]).

        Per tap: mean and std over ``hires_frames`` evenly spaced frames of the (global mean,
        global max) pooled map, then the same pooling of the three summary images.
        ``channels`` (an experiment's, not the scorer's): per clip float [T,2,S,S] that the read
        frames carry as the backbone's second and third input channels instead of their grey copies.
        """
        return self.hires_from_images(self.hires_images(views, channels))

    def hires_images(self, views: Sequence[np.ndarray], channels: Sequence[np.ndarray] | None = None
                     ) -> list[np.ndarray]:
        """What the hires pass reads of each clip: its ``hires_frames`` evenly spaced frames, then
        its three summary images ([k+3,S,S]; [k+3,3,S,S] with ``channels``). A prepared clip stores
        these instead of the whole large canvas (:mod:`scoring.core.features.prepared`)."""
        k = self.recipe.hires_frames
        return [hires_images(x, k, None if channels is None else channels[c]) for c, x in enumerate(views)]

    @torch.inference_mode()
    def hires_from_images(self, imgs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Hires descriptors from each clip's :meth:`hires_images` (one batched pass over all)."""
        r = self.recipe
        k = r.hires_frames
        if not imgs:
            return []
        allx = np.concatenate(list(imgs), 0)
        per_tap: list[list[np.ndarray]] = [[] for _ in r.hires_taps]
        for i in range(0, len(allx), self.batch):
            maps = self._forward(self.to_input(allx[i : i + self.batch]), r.hires_taps)
            for j, m in enumerate(maps):
                per_tap[j].append(torch.cat([m.mean((2, 3)), m.amax((2, 3))], 1).cpu().numpy())
        pooled = [np.concatenate(p, 0) for p in per_tap]
        out = []
        for c in range(len(imgs)):
            rows = slice(c * (k + 3), (c + 1) * (k + 3))
            parts = []
            for p in pooled:
                a = p[rows]
                parts += [a[:k].mean(0), a[:k].std(0), a[k:].reshape(-1)]
            out.append(np.concatenate(parts).astype(np.float32))
        return out

    def clips(self, inputs: Sequence[np.ndarray], hires_views: Sequence[np.ndarray] | None = None,
              hand: Sequence[np.ndarray] | None = None,
              hires_images: Sequence[np.ndarray] | None = None) -> list[dict[str, np.ndarray]]:
        """Features for several clips at once (all frames of an exam in one batched pass).

        ``inputs``: model-input clips float [T,S,S]; ``hires_views``: the same clips on the
        recipe's ``hires_size`` canvas (required when the recipe has one). Returns per clip
        ``frame`` [T, frame_dim], ``summary`` [3 * cnn_dim] (empty when the recipe has no
        summary images) and ``hires`` [hires_dim] (empty without a hires view). ``hand``: the
        clips' hand-crafted features when already computed (:func:`handcrafted_features`);
        ``hires_images``: instead of ``hires_views``, what the hires pass reads (:meth:`hires_images`).
        """
        if hires_images is None and hires_views is not None:
            hires_images = self.hires_images(hires_views)
        if self.recipe.hires_size and (hires_images is None or len(hires_images) != len(inputs)):
            raise ValueError(f"this recipe reads a {self.recipe.hires_size}-px view of every clip: "
                             "pass hires_views (see preprocess.model_input_views)")
        imgs = list(inputs)
        if self.recipe.summary_images:
            imgs += [self.summary_images(x) for x in inputs]
        allf = self.cnn(np.concatenate(imgs, 0)) if imgs else np.zeros((0, self.cnn_dim), np.float32)
        out: list[dict[str, np.ndarray]] = []
        pos = 0
        for j, x in enumerate(inputs):
            f = allf[pos : pos + len(x)]
            pos += len(x)
            if self.recipe.hand:
                f = np.concatenate([f, hand[j] if hand is not None else handcrafted_features(x)], 1)
            out.append({"frame": f})
        if self.recipe.summary_images:
            for d in out:
                d["summary"] = allf[pos : pos + 3].reshape(-1)
                pos += 3
        else:
            for d in out:
                d["summary"] = np.zeros(0, np.float32)
        hr = self.hires_from_images(hires_images) if self.recipe.hires_size and hires_images is not None else []
        for j, d in enumerate(out):
            d["hires"] = hr[j] if hr else np.zeros(0, np.float32)
        return out


def hires_images(x: np.ndarray, k: int, channels: np.ndarray | None = None) -> np.ndarray:
    """One clip's images for the hires pass (float [T,S,S] on the large canvas): its ``k`` evenly
    spaced frames, then its three summary images ([k+3,S,S]; [k+3,3,S,S] with ``channels``)."""
    idx = hires_frame_indices(len(x), k)
    summary = Featurizer.summary_images(x)
    if channels is None:
        return np.concatenate([x[idx], summary], 0)
    read = np.concatenate([x[idx][:, None], np.asarray(channels, np.float32)[idx]], 1)
    return np.concatenate([read, np.repeat(summary[:, None], 3, 1)], 0)


def hires_frame_indices(n_frames: int, k: int) -> np.ndarray:
    """The ``k`` evenly spaced frames of an ``n_frames`` clip that the hires view reads (int [k];
    a clip shorter than ``k`` frames repeats some). The clip heads' explanation marks these."""
    return np.linspace(0, n_frames - 1, k).round().astype(int)


def _hires_tap_width(block_channels: Sequence[int], tap: int) -> int:
    """Columns one tap adds to the hires descriptor: (mean, max) pooling x (mean and std over
    frames + 3 summary images), the layout :meth:`Featurizer.hires` writes."""
    return 2 * block_channels[tap] * (2 + 3)


def hires_dim(recipe: Recipe, block_channels: Sequence[int]) -> int:
    """Length of the hires descriptor (0 without a hires view)."""
    if not recipe.hires_size:
        return 0
    return sum(_hires_tap_width(block_channels, t) for t in recipe.hires_taps)


def hires_columns(recipe: Recipe, block_channels: Sequence[int], member: str) -> np.ndarray:
    """Columns of the hires descriptor read by member ``hr:<tap>+<tap>...``."""
    want = [int(t) for t in member.split(":", 1)[1].split("+")]
    bad = [t for t in want if t not in recipe.hires_taps]
    if bad:
        raise ValueError(f"member {member!r} reads taps {bad} that the recipe's hires view does not have "
                         f"(hires_taps {list(recipe.hires_taps)})")
    cols: list[int] = []
    pos = 0
    for t in recipe.hires_taps:
        n = _hires_tap_width(block_channels, t)
        if t in want:
            cols.extend(range(pos, pos + n))
        pos += n
    return np.asarray(cols, int)


def clip_descriptor(feat: dict[str, np.ndarray]) -> np.ndarray:
    """Clip-level vector: mean and std over frames of the frame features + summary features."""
    f = feat["frame"]
    return np.concatenate([f.mean(0), f.std(0), feat["summary"]]).astype(np.float32)


def cnn_columns(recipe: Recipe, fz_cnn_dim: int, frame_dim: int, summary_dim: int) -> np.ndarray:
    """Indices of the CNN-only columns of the clip descriptor (for the ``lr_cnn`` member)."""
    idx = list(range(fz_cnn_dim)) + list(range(frame_dim, frame_dim + fz_cnn_dim))
    idx += list(range(2 * frame_dim, 2 * frame_dim + summary_dim))
    return np.asarray(idx, int)
