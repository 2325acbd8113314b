"""Training, cross-validation and the model bundle (the weights file's content).

Recipe ``frozen`` (the default weights):

1. every clip is preprocessed (:mod:`scoring.core.preprocess`) and passed through the
   ImageNet EfficientNet-Lite0 truncated after ``max(taps)`` (frozen);
2. per-frame feature ``f_t`` = pooled maps of the tapped blocks (mean, max, three depth
   bands) + hand-crafted physics features (:mod:`scoring.core.features`);
3. per-clip descriptor = mean and std over frames of ``f_t`` + the CNN features of the clip's
   three *summary images* (temporal mean, max and std): the std image shows what moves with
   the pleura (B-lines), the max image the brightest extent of artefacts;
4. a **frame head** (linear; severity trained with SORD soft targets of the clip label,
   findings with masked BCE) gives every frame its probabilities and score;
5. **clip heads** (default ``hires``): the clip is also put on a 224-px canvas (same sector,
   same crop); ``hires_frames`` evenly spaced frames and the three summary images go through
   the same frozen backbone, each tapped map (``hires_taps``) is pooled by global mean and
   max, and the clip's *hires descriptor* is, per tap, the mean and std over the frames plus
   the summary images' vectors. Three logistic regressions read three different depths of the
   backbone (``hr:7``, ``hr:4+7``, ``hr:7+10``) and vote (see :func:`vote`). At 112 px the
   pleural line is 1-2 px thick; at 224 px block-7 features separate the scores clearly
   better (EXPERIMENTS.md rows 28-31) for ~7 extra images per clip instead of 4x every frame.
   Older members on the 112-px clip descriptor (``lr_all`` on everything, ``lr_cnn`` on the
   CNN part, ``ridge`` ordinal regression) and the frame aggregators (``argmax_mean``,
   ``max_argmax``, ``mode``, ``uninorm``) over the frame head remain selectable.

Everything fitted is stored as plain tensors / numbers (``torch.load(weights_only=True)``).
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.special import expit

from scoring.core.aggregate import UninormAggregator, get_aggregator
from scoring.core.datasets import CACHE_ROOT, ClipRecord, cached_frames, cached_views
from scoring.core.domain import DomainCheck
from scoring.core.features import HAND_NAMES, handcrafted_features
from scoring.core.nets import FINDINGS, LITE0_BLOCK_CHANNELS, LITE_MEAN, LITE_STD, SCORE_CLASSES, fuse_bn_, load_lite0
from scoring.core.preprocess import PreprocessConfig, normalise_intensity
from scoring.core.sord import sord_targets
from scoring.core.stats import classification_report

N_CLASSES = len(SCORE_CLASSES)
#: Bump when features or the bundle layout change.
FEATURE_VERSION = "feat-2"


@dataclass
class Recipe:
    """Everything that defines a model (stored in the weights metadata)."""

    size: int = 112
    intensity: str = "p99"
    taps: tuple[int, ...] = (4, 7)
    hand: bool = True
    summary_images: bool = True
    frame_c: float = 1e-3  # L2 strength of the frame head (weight decay)
    clip_c: float = 3e-3  # inverse L2 of the clip logistic regressions
    ridge_alpha: float = 3000.0
    sord_alpha: float = 1.0
    sord_zero: float = -1.0
    aggregator: str = "ensemble"  # ensemble | argmax_mean | max_argmax | mode | uninorm | lr_all
    noise_filter: int = 0  # drop training clips whose out-of-fold prediction is >= this far off (0: off)
    class_weight: str = "balanced"
    members: tuple[str, ...] = ("hr:7", "hr:4+7", "hr:7+10")
    backbone_tag: str = ""  # content hash of adapted backbone blocks ("" = ImageNet Lite0 as is)
    hires_size: int = 224  # canvas of the clip heads' second view (0: off)
    hires_frames: int = 4  # evenly spaced frames per clip in that view (+ 3 summary images)
    hires_taps: tuple[int, ...] = (4, 7, 10)
    hires_c: float = 1e-3  # inverse L2 of the hires logistic regressions

    def preprocess(self) -> PreprocessConfig:
        """The preprocessing configuration of this recipe."""
        return PreprocessConfig(size=self.size, intensity=self.intensity)

    def to_dict(self) -> dict[str, object]:
        """Plain dict."""
        d = dict(self.__dict__)
        d["taps"] = list(self.taps)
        d["members"] = list(self.members)
        d["hires_taps"] = list(self.hires_taps)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> Recipe:
        """Inverse of :meth:`to_dict`."""
        names = set(cls.__dataclass_fields__)
        kw = {k: v for k, v in d.items() if k in names}
        # Bundles written before the hires view existed (feat-1) have no such key: keep it off.
        kw.setdefault("hires_size", 0)
        for k in ("taps", "members", "hires_taps"):
            if k in kw:
                kw[k] = tuple(kw[k])  # type: ignore[arg-type]
        return cls(**kw)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- features


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

    def _tensor(self, x: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[:, None]
        t = ((t - LITE_MEAN) / LITE_STD).expand(-1, 3, -1, -1)
        return t.contiguous(memory_format=torch.channels_last)

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
            maps = self.model.forward_features(self._tensor(images[i : i + self.batch]), self.recipe.taps)
            out.append(self.pool(maps))
        if not out:
            return np.zeros((0, self.cnn_dim), np.float32)
        return torch.cat(out).numpy().astype(np.float32)

    @staticmethod
    def summary_images(x: np.ndarray) -> np.ndarray:
        """Temporal mean, max and (max-normalised) std images of a clip: [3,S,S]."""
        sd = x.std(0)
        sd = sd / (sd.max() + 1e-6)
        return np.stack([x.mean(0), x.max(0), sd]).astype(np.float32)

    @torch.inference_mode()
    def hires(self, views: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Hires descriptors [hires_dim] of clips given on the large canvas (float [T,S,S]).

        Per tap: mean and std over ``hires_frames`` evenly spaced frames of the (global mean,
        global max) pooled map, then the same pooling of the three summary images.
        """
        r = self.recipe
        k = r.hires_frames
        imgs = []
        for x in views:
            idx = np.linspace(0, len(x) - 1, k).round().astype(int)
            imgs.append(np.concatenate([x[idx], self.summary_images(x)], 0))
        if not imgs:
            return []
        allx = np.concatenate(imgs, 0)
        per_tap: list[list[np.ndarray]] = [[] for _ in r.hires_taps]
        for i in range(0, len(allx), self.batch):
            maps = self.model.forward_features(self._tensor(allx[i : i + self.batch]), r.hires_taps)
            for j, m in enumerate(maps):
                per_tap[j].append(torch.cat([m.mean((2, 3)), m.amax((2, 3))], 1).numpy())
        pooled = [np.concatenate(p, 0) for p in per_tap]
        out = []
        for c in range(len(views)):
            rows = slice(c * (k + 3), (c + 1) * (k + 3))
            parts = []
            for p in pooled:
                a = p[rows]
                parts += [a[:k].mean(0), a[:k].std(0), a[k:].reshape(-1)]
            out.append(np.concatenate(parts).astype(np.float32))
        return out

    def clips(self, inputs: Sequence[np.ndarray],
              hires_views: Sequence[np.ndarray] | None = None) -> list[dict[str, np.ndarray]]:
        """Features for several clips at once (all frames of an exam in one batched pass).

        ``inputs``: model-input clips float [T,S,S]; ``hires_views``: the same clips on the
        recipe's ``hires_size`` canvas (required when the recipe has one). Returns per clip
        ``frame`` [T, frame_dim], ``summary`` [3 * cnn_dim] (empty when the recipe has no
        summary images) and ``hires`` [hires_dim] (empty without a hires view).
        """
        if self.recipe.hires_size and (hires_views is None or len(hires_views) != len(inputs)):
            raise ValueError(f"this recipe reads a {self.recipe.hires_size}-px view of every clip: "
                             "pass hires_views (see preprocess.model_input_views)")
        imgs = list(inputs)
        if self.recipe.summary_images:
            imgs += [self.summary_images(x) for x in inputs]
        allf = self.cnn(np.concatenate(imgs, 0)) if imgs else np.zeros((0, self.cnn_dim), np.float32)
        out: list[dict[str, np.ndarray]] = []
        pos = 0
        for x in inputs:
            f = allf[pos : pos + len(x)]
            pos += len(x)
            if self.recipe.hand:
                f = np.concatenate([f, handcrafted_features(x)], 1)
            out.append({"frame": f})
        if self.recipe.summary_images:
            for d in out:
                d["summary"] = allf[pos : pos + 3].reshape(-1)
                pos += 3
        else:
            for d in out:
                d["summary"] = np.zeros(0, np.float32)
        hr = self.hires(hires_views) if self.recipe.hires_size and hires_views is not None else []
        for j, d in enumerate(out):
            d["hires"] = hr[j] if hr else np.zeros(0, np.float32)
        return out


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


def featurize_records(records: Sequence[ClipRecord], recipe: Recipe, fz: Featurizer | None = None,
                      max_frames: int = 120, log: Callable[[str], None] | None = None) -> list[dict[str, np.ndarray]]:
    """Features of labelled clips, cached in ``~/.cache/lusweb/features`` per clip and recipe."""
    cfg = recipe.preprocess()
    key_recipe = json.dumps([FEATURE_VERSION, cfg.to_dict(), list(recipe.taps), recipe.hand,
                             recipe.summary_images, max_frames, recipe.backbone_tag,
                             recipe.hires_size, recipe.hires_frames, list(recipe.hires_taps)])
    d = CACHE_ROOT / "features"
    d.mkdir(parents=True, exist_ok=True)
    out: list[dict[str, np.ndarray]] = []
    t0 = time.time()
    for i, r in enumerate(records):
        st = os.stat(r.path)
        k = hashlib.sha1(json.dumps([key_recipe, os.path.abspath(r.path), st.st_size, int(st.st_mtime)]).encode())
        f = d / f"{k.hexdigest()[:24]}.npz"
        if f.exists():
            z = np.load(f)
            out.append({"frame": z["frame"], "summary": z["summary"], "hires": z["hires"]})
            continue
        if fz is None:
            fz = Featurizer(recipe)
        views = None
        if recipe.hires_size:
            # One decode and one sector detection for both canvases.
            u8, u8h = cached_views(r.path, cfg, recipe.hires_size, max_frames)
            views = [normalise_intensity(u8h.astype(np.float32) / 255.0, cfg.intensity)]
        else:
            u8 = cached_frames(r.path, cfg, max_frames)
        x = normalise_intensity(u8.astype(np.float32) / 255.0, cfg.intensity)
        feat = fz.clips([x], views)[0]
        np.savez(f, frame=feat["frame"], summary=feat["summary"], hires=feat["hires"])
        out.append(feat)
        if log and (i + 1) % 25 == 0:
            log(f"featurised {i + 1}/{len(records)} clips ({time.time() - t0:.0f}s)")
    return out


# --------------------------------------------------------------------------- heads


@dataclass
class LinearModel:
    """Standardise then affine: logits = ((x - mu) / sd) @ W.T + b."""

    mu: np.ndarray
    sd: np.ndarray
    w: np.ndarray
    b: np.ndarray
    cols: np.ndarray | None = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Logits / outputs for rows of ``x``."""
        if self.cols is not None:
            x = x[..., self.cols]
        return ((x - self.mu) / self.sd) @ self.w.T + self.b

    def to_state(self) -> dict[str, torch.Tensor]:
        """Tensors for the weights file."""
        s = {k: torch.from_numpy(np.asarray(getattr(self, k), np.float32)) for k in ("mu", "sd", "w", "b")}
        if self.cols is not None:
            s["cols"] = torch.from_numpy(np.asarray(self.cols, np.int64))
        return s

    @classmethod
    def from_state(cls, s: dict[str, torch.Tensor]) -> LinearModel:
        """Inverse of :meth:`to_state`."""
        cols = s["cols"].numpy() if "cols" in s else None
        return cls(s["mu"].numpy(), s["sd"].numpy(), s["w"].numpy(), s["b"].numpy(), cols)


def _standardiser(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu = x.mean(0)
    sd = x.std(0)
    sd[sd < 1e-6] = 1.0
    return mu.astype(np.float32), sd.astype(np.float32)


def _class_weights(y: np.ndarray, mode: str) -> np.ndarray:
    if mode != "balanced":
        return np.ones(N_CLASSES)
    cnt = np.bincount(y, minlength=N_CLASSES).astype(float)
    w = np.where(cnt > 0, len(y) / (N_CLASSES * np.maximum(cnt, 1)), 0.0)
    return w


def fit_logreg(x: np.ndarray, y: np.ndarray, c: float, class_weight: str, seed: int,
               cols: np.ndarray | None = None) -> LinearModel:
    """Multinomial logistic regression (scikit-learn lbfgs) copied into a LinearModel."""
    from sklearn.linear_model import LogisticRegression

    xs = x[:, cols] if cols is not None else x
    mu, sd = _standardiser(xs)
    cw = _class_weights(y, class_weight)
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
    sw = _class_weights(y, class_weight)[y]
    ym = float((sw * y).sum() / sw.sum())
    zw = z * np.sqrt(sw)[:, None]
    yw = (y - ym) * np.sqrt(sw)
    # Dual form: n << d, so solve the n x n system.
    k = zw @ zw.T
    a = np.linalg.solve(k + alpha * np.eye(len(y)), yw)
    w = (zw.T @ a)[None].astype(np.float32)
    return LinearModel(mu, sd, w, np.array([ym], np.float32))


def ridge_probs(e: np.ndarray, width: float = 0.6) -> np.ndarray:
    """Turn an expected score into class probabilities: p_c ~ exp(-(c - e)^2 / (2 width^2))."""
    c = np.arange(N_CLASSES)[None]
    z = -((c - np.asarray(e, float).reshape(-1, 1)) ** 2) / (2 * width * width)
    z -= z.max(1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(1, keepdims=True)


def fit_frame_head(feats: Sequence[np.ndarray], y: np.ndarray, findings: np.ndarray, recipe: Recipe,
                   seed: int, steps: int = 250, max_frames: int = 16) -> tuple[LinearModel, LinearModel]:
    """Per-frame severity (SORD targets of the clip label) + findings (masked BCE) heads.

    Every clip has the same total weight (1/T per frame) times its class weight, so long
    clips do not dominate; at most ``max_frames`` evenly spaced frames per clip are used
    (consecutive frames are nearly identical, and it keeps a CV fold to seconds). Trained
    full-batch with Adam and an L2 penalty ``frame_c``.
    """
    torch.manual_seed(seed)
    feats = [f[np.unique(np.linspace(0, len(f) - 1, min(len(f), max_frames)).round().astype(int))] for f in feats]
    x = np.concatenate(feats, 0)
    mu, sd = _standardiser(x)
    xt = torch.from_numpy((x - mu) / sd)
    lens = [len(f) for f in feats]
    yi = np.repeat(y, lens)
    cw = _class_weights(y, recipe.class_weight)
    w = np.repeat(1.0 / np.asarray(lens, float), lens) * cw[yi]
    w = torch.from_numpy((w / w.mean()).astype(np.float32))
    q = torch.from_numpy(sord_targets(yi, N_CLASSES, recipe.sord_alpha, recipe.sord_zero).astype(np.float32))
    fy = torch.from_numpy(np.repeat(findings, lens, axis=0).astype(np.float32))
    fmask = (fy >= 0).float()
    lin = torch.nn.Linear(x.shape[1], N_CLASSES)
    fin = torch.nn.Linear(x.shape[1], len(FINDINGS))
    opt = torch.optim.Adam([*lin.parameters(), *fin.parameters()], lr=0.01, weight_decay=0.0)
    for _ in range(steps):
        opt.zero_grad()
        ce = -(q * torch.log_softmax(lin(xt), 1)).sum(1)
        loss = (ce * w).mean()
        if fmask.sum() > 0:
            bce = torch.nn.functional.binary_cross_entropy_with_logits(fin(xt), fy.clamp_min(0), reduction="none")
            loss = loss + 0.5 * (bce * fmask).sum() / fmask.sum()
        l2 = lin.weight.pow(2).sum() + fin.weight.pow(2).sum()
        (loss + recipe.frame_c * l2).backward()
        opt.step()
    sev = LinearModel(mu, sd, lin.weight.detach().numpy(), lin.bias.detach().numpy())
    fnd = LinearModel(mu, sd, fin.weight.detach().numpy(), fin.bias.detach().numpy())
    return sev, fnd


def softmax(z: np.ndarray) -> np.ndarray:
    """Row softmax."""
    z = np.asarray(z, np.float64)
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def vote(member_probs: Sequence[np.ndarray], conf: float = 0.8) -> tuple[np.ndarray, int]:
    """Voting ensemble of three members (each a probability vector over the 4 scores).

    * majority: if at least two members' argmax agree, that score wins;
    * all three differ: the most confident member wins if its top probability >= ``conf``;
      otherwise the median of the three scores (the middle one - ordinal, never extreme).

    The returned probabilities are the mean over the members that voted for the winning score
    (so their argmax is that score): the agreeing members, the confident member, or the median
    member.
    """
    ps = [np.asarray(p, np.float64) for p in member_probs]
    votes = [int(np.argmax(p)) for p in ps]
    counts = np.bincount(votes, minlength=N_CLASSES)
    if counts.max() >= 2:
        win = int(np.argmax(counts))
    else:
        tops = [float(p.max()) for p in ps]
        best = int(np.argmax(tops))
        win = votes[best] if tops[best] >= conf else int(np.median(votes))
    probs = np.mean([p for p, v in zip(ps, votes, strict=True) if v == win], 0)
    return probs / probs.sum(), win


@dataclass
class Bundle:
    """A trained model: recipe, heads and metadata (what the weights file stores)."""

    recipe: Recipe
    frame_sev: LinearModel
    frame_fnd: LinearModel
    clip_members: dict[str, LinearModel] = field(default_factory=dict)
    uninorm: UninormAggregator | None = None
    meta: dict[str, object] = field(default_factory=dict)
    backbone_state: dict[str, torch.Tensor] = field(default_factory=dict)
    domain: DomainCheck | None = None  # out-of-domain check on the hires descriptor

    def predict(self, feat: dict[str, np.ndarray]) -> dict[str, object]:
        """Frame and clip predictions for one clip's features."""
        f = feat["frame"]
        fp = softmax(self.frame_sev(f))
        ff = expit(self.frame_fnd(f))  # logistic without overflow for large |logits|
        agg = self.recipe.aggregator
        members: dict[str, np.ndarray] = {}
        if self.clip_members:
            # The 112-px clip descriptor only for members that read it (not the hr:* ones).
            d = None if all(n.startswith("hr:") for n in self.clip_members) else clip_descriptor(feat)[None]
            for name, m in self.clip_members.items():
                out = m(feat["hires"][None]) if name.startswith("hr:") or d is None else m(d)
                members[name] = ridge_probs(out[:, 0])[0] if name == "ridge" else softmax(out)[0]
        if agg == "ensemble":
            cp, cs = vote([members[m] for m in self.recipe.members])
        elif agg in members:
            cp = members[agg]
            cs = int(np.argmax(cp))
        else:
            cp, cs = get_aggregator(agg, self.uninorm)(fp)
        return {"frame_probs": fp, "frame_findings": ff, "clip_probs": np.asarray(cp, np.float64),
                "clip_score": int(cs), "members": members}

    def to_state(self) -> dict[str, object]:
        """Plain dict of tensors / numbers (safe for ``torch.load(weights_only=True)``)."""
        st: dict[str, object] = {
            "format": "lusweb-scoring-bundle/1",
            "recipe": self.recipe.to_dict(),
            "frame_sev": self.frame_sev.to_state(),
            "frame_fnd": self.frame_fnd.to_state(),
            "clip_members": {k: v.to_state() for k, v in self.clip_members.items()},
            "meta": self.meta,
        }
        if self.backbone_state:
            st["backbone_state"] = self.backbone_state
        if self.uninorm is not None:
            st["uninorm"] = {k: v.detach().clone() for k, v in self.uninorm.state_dict().items()}
        if self.domain is not None:
            st["domain"] = self.domain.to_state()
        return st

    @classmethod
    def from_state(cls, st: dict[str, object]) -> Bundle:
        """Inverse of :meth:`to_state`."""
        recipe = Recipe.from_dict(st["recipe"])  # type: ignore[arg-type]
        uni = None
        if "uninorm" in st:
            uni = UninormAggregator(N_CLASSES)
            uni.load_state_dict(st["uninorm"])  # type: ignore[arg-type]
        return cls(
            recipe,
            LinearModel.from_state(st["frame_sev"]),  # type: ignore[arg-type]
            LinearModel.from_state(st["frame_fnd"]),  # type: ignore[arg-type]
            {k: LinearModel.from_state(v) for k, v in st["clip_members"].items()},  # type: ignore[attr-defined]
            uni,
            dict(st.get("meta", {})),  # type: ignore[call-overload]
            dict(st.get("backbone_state", {})),  # type: ignore[call-overload]
            DomainCheck.from_state(st["domain"]) if "domain" in st else None,  # type: ignore[arg-type]
        )


def fit_bundle(feats: Sequence[dict[str, np.ndarray]], y: np.ndarray, findings: np.ndarray,
               recipe: Recipe, seed: int = 0, cnn_dim: int | None = None) -> Bundle:
    """Fit all heads on the given clips (features precomputed)."""
    y = np.asarray(y, int)
    sev, fnd = fit_frame_head([f["frame"] for f in feats], y, findings, recipe, seed)
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


def fit_with_noise_filter(feats: Sequence[dict[str, np.ndarray]], y: np.ndarray, findings: np.ndarray,
                          groups: Sequence[str], recipe: Recipe, seed: int) -> tuple[Bundle, np.ndarray]:
    """Xing et al. 2022 style label-noise filtering, then the final fit.

    Out-of-fold predictions (patient-grouped 5-fold inside the given training set) are
    compared with the labels; clips whose prediction is ``noise_filter`` or more classes away
    are dropped and the model is refitted on the rest. Returns (bundle, kept mask).
    """
    keep = np.ones(len(y), bool)
    if recipe.noise_filter > 0:
        pred = oof_predict(feats, y, findings, groups, recipe, seed, k=5)
        keep = np.abs(pred - y) < recipe.noise_filter
        # Never drop a whole class.
        for c in range(N_CLASSES):
            if (y == c).any() and not (keep & (y == c)).any():
                keep |= y == c
    sel = [int(i) for i in np.nonzero(keep)[0]]
    b = fit_bundle([feats[i] for i in sel], y[sel], findings[sel], recipe, seed)
    return b, keep


def folds(y: np.ndarray, groups: Sequence[str], k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Patient-grouped stratified k folds (a patient's clips are never split)."""
    from sklearn.model_selection import StratifiedGroupKFold

    g = np.asarray(groups)
    k = min(k, len(set(g)))
    return list(StratifiedGroupKFold(k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y, g))


def oof_predict(feats: Sequence[dict[str, np.ndarray]], y: np.ndarray, findings: np.ndarray,
                groups: Sequence[str], recipe: Recipe, seed: int, k: int = 5) -> np.ndarray:
    """Out-of-fold clip scores (no noise filtering inside)."""
    inner = Recipe.from_dict({**recipe.to_dict(), "noise_filter": 0})
    pred = np.zeros(len(y), int)
    for tr, te in folds(y, groups, k, seed):
        b = fit_bundle([feats[i] for i in tr], y[tr], findings[tr], inner, seed)
        for i in te:
            pred[i] = b.predict(feats[i])["clip_score"]
    return pred


def cross_validate(feats: Sequence[dict[str, np.ndarray]], y: np.ndarray, findings: np.ndarray,
                   groups: Sequence[str], recipe: Recipe, seeds: Sequence[int] = (0, 1, 2),
                   k: int = 5, eval_mask: np.ndarray | None = None,
                   log: Callable[[str], None] | None = None) -> dict[str, object]:
    """Patient-grouped k-fold CV repeated over seeds; mean and sd of every scalar metric.

    ``eval_mask``: only these clips are scored (e.g. COVID-BLUES when POCUS is added to the
    training folds); the others are always in training.
    """
    y = np.asarray(y, int)
    em = np.ones(len(y), bool) if eval_mask is None else np.asarray(eval_mask, bool)
    per_seed: list[dict[str, object]] = []
    for seed in seeds:
        pred = np.full(len(y), -1)
        expected = np.zeros(len(y))
        probs = np.zeros((len(y), N_CLASSES))
        for _tr, te in folds(y[em], np.asarray(groups)[em], k, seed):
            te_idx = np.nonzero(em)[0][te]
            tr_idx = np.setdiff1d(np.arange(len(y)), te_idx)
            trg = [groups[i] for i in tr_idx]
            b, _ = fit_with_noise_filter([feats[i] for i in tr_idx], y[tr_idx], findings[tr_idx], trg, recipe, seed)
            for i in te_idx:
                out = b.predict(feats[i])
                pred[i] = out["clip_score"]
                probs[i] = np.asarray(out["clip_probs"])
                expected[i] = float(probs[i] @ np.arange(N_CLASSES))
        rep = classification_report(y[em], pred[em], expected=expected[em], probs=probs[em])
        per_seed.append(rep)
        if log:
            log(f"seed {seed}: acc {rep['accuracy']:.3f} within1 {rep['within1']:.3f} "
                f"spearman {rep['spearman']:.3f} qwk {rep['qwk']:.3f} macroF1 {rep['macro_f1']:.3f} "
                f"ECE {rep['ece']:.3f} Brier {rep['brier']:.3f}")
    summary: dict[str, object] = {"seeds": list(seeds), "k": k, "n_clips": int(em.sum()),
                                  "n_patients": len(set(np.asarray(groups)[em]))}
    for key in ("accuracy", "within1", "spearman", "spearman_expected", "qwk", "macro_f1", "ece", "brier"):
        vals = np.array([float(r[key]) for r in per_seed])  # type: ignore[arg-type]
        summary[key] = {"mean": float(vals.mean()), "sd": float(vals.std()), "per_seed": vals.tolist()}
    summary["confusion_seed0"] = per_seed[0]["confusion"]
    summary["sensitivity_seed0"] = per_seed[0]["sensitivity"]
    summary["specificity_seed0"] = per_seed[0]["specificity"]
    return summary
