"""The model bundle (the weights file's content): the recipe, the fitted heads, the vote.

Everything fitted is stored as plain tensors / numbers (``torch.load(weights_only=True)``):
:meth:`Bundle.to_state` / :meth:`Bundle.from_state`.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.special import expit

from scoring.core.features.featurizer import clip_descriptor
from scoring.core.features.recipe import Recipe
from scoring.core.inference.aggregate import UninormAggregator, get_aggregator
from scoring.core.inference.domain import DomainCheck
from scoring.core.labels import N_CLASSES

#: The ``format`` of a scorer weights file (``Bundle.to_state``; what ``load_bundle`` reads).
BUNDLE_FORMAT = "lusweb-scoring-bundle/1"


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


def ridge_probs(e: np.ndarray, width: float = 0.6) -> np.ndarray:
    """Turn an expected score into class probabilities: p_c ~ exp(-(c - e)^2 / (2 width^2))."""
    c = np.arange(N_CLASSES)[None]
    z = -((c - np.asarray(e, float).reshape(-1, 1)) ** 2) / (2 * width * width)
    z -= z.max(1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(1, keepdims=True)


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
            "format": BUNDLE_FORMAT,
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
