"""The end-to-end frame networks at inference: their recipe, construction, input and outputs.

MCRFNet (Hu et al. 2021) and Reg-STN (Roy et al. 2020) are trained by
``scoring.core.training.nets`` (``lus_train --arch``); what scoring a clip with them needs lives
here, below the training layer, so the product's scorer (:mod:`.net_scorer`) runs them without
importing training code.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from scoring.core.features.modalities import modality_stack
from scoring.core.inference.aggregate import UninormAggregator, argmax_mean
from scoring.core.labels import SCORE_CLASSES
from scoring.core.models.mcrfnet import MCRFNet
from scoring.core.models.regstn import RegSTN

#: The end-to-end architectures ``lus_train --arch`` trains with this module.
NET_ARCHS: tuple[str, ...] = ("mcrfnet", "reg-stn")
NET_AGGREGATORS: tuple[str, ...] = ("mean", "uninorm")


@dataclass(frozen=True)
class NetRecipe:
    """Everything that decides a trained network besides its data and seed (stored in its weights file)."""

    arch: str
    size: int = 112
    clip_frames: int = 16
    epoch_frames: int = 8
    epochs: int = 6
    batch: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    six_weight: float = 0.5
    balanced: bool = True
    #: Frames -> clip: "mean" (argmax of the mean frame probabilities) or "uninorm" (Roy et al.'s
    #: learned uninorm, fitted on the training clips' frame probabilities after the network).
    aggregator: str = "mean"

    def __post_init__(self) -> None:
        if self.arch not in NET_ARCHS:
            raise ValueError(f"unknown network architecture {self.arch!r}; choose one of {', '.join(NET_ARCHS)}")
        if not 0 < self.epoch_frames <= self.clip_frames:
            raise ValueError(f"epoch_frames must be in 1..clip_frames ({self.clip_frames}), got {self.epoch_frames}")
        if self.epochs < 1 or self.batch < 2 or self.size < 32:
            raise ValueError("epochs >= 1, batch >= 2 and size >= 32 are required")
        if self.aggregator not in NET_AGGREGATORS:
            raise ValueError(f"unknown clip aggregator {self.aggregator!r}; choose one of {', '.join(NET_AGGREGATORS)}")

    def to_dict(self) -> dict[str, object]:
        """Plain JSON types (the weights file loads with ``weights_only=True``)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> NetRecipe:
        """Inverse of :meth:`to_dict`; unknown keys are refused by name."""
        known = {f.name for f in fields(cls)}
        extra = sorted(set(d) - known)
        if extra:
            raise ValueError(f"unknown network recipe keys {extra}")
        return cls(**d)  # type: ignore[arg-type]


def build_net(recipe: NetRecipe) -> nn.Module:
    """A freshly initialised network of the recipe's architecture."""
    if recipe.arch == "mcrfnet":
        return MCRFNet()
    return RegSTN(n_classes=len(SCORE_CLASSES))


def net_input(recipe: NetRecipe, frames: np.ndarray) -> torch.Tensor:
    """Preprocessed uint8 frames ``[T, S, S]`` -> the network's input: ``[T, 3, S, S]`` modalities
    (MCRFNet) or ``[T, 1, S, S]`` grey levels in [0, 1] (Reg-STN)."""
    grey = np.asarray(frames, np.float32) / 255.0
    if recipe.arch == "mcrfnet":
        return torch.from_numpy(modality_stack(grey)).float()
    return torch.from_numpy(grey[:, None]).contiguous()


class FrameOutputs(NamedTuple):
    """A network's outputs for every frame: Soldati probabilities ``[T, 4]``; MCRFNet's six-class
    probabilities ``[T, 6]`` (else None); Reg-STN's two crops' affine transforms ``[T, 2, 2, 3]``
    (else None)."""

    probs: np.ndarray
    six_probs: np.ndarray | None
    theta: np.ndarray | None


def frame_outputs(model: nn.Module, recipe: NetRecipe, x: torch.Tensor, batch: int = 64) -> FrameOutputs:
    """Every frame of ``x`` through the network (eval mode, no gradient), ``batch`` frames per pass
    on the model's device."""
    model.eval()
    device = next(model.parameters()).device
    probs, six, theta = [], [], []
    with torch.inference_mode():
        for i in range(0, len(x), batch):
            o = model(x[i:i + batch].to(device))
            if recipe.arch == "mcrfnet":
                probs.append(torch.softmax(o.score_logits.float(), 1).cpu())
                six.append(torch.softmax(o.six_logits.float(), 1).cpu())
            else:
                probs.append(o.probs.float().cpu())
                theta.append(o.theta.float().cpu())
    if not probs:
        return FrameOutputs(np.zeros((0, len(SCORE_CLASSES))), None, None)
    return FrameOutputs(torch.cat(probs).double().numpy(), torch.cat(six).double().numpy() if six else None,
                        torch.cat(theta).double().numpy() if theta else None)


def frame_probs(model: nn.Module, recipe: NetRecipe, x: torch.Tensor, batch: int = 64) -> np.ndarray:
    """Soldati 0-3 probabilities ``[T, 4]`` of every frame of ``x`` (eval mode, no gradient)."""
    return frame_outputs(model, recipe, x, batch).probs


def clip_prediction(probs: np.ndarray, uninorm: UninormAggregator | None = None) -> dict[str, object]:
    """Frame probabilities -> the clip's probabilities and score: their mean and its argmax, or
    the fitted ``uninorm``'s aggregation."""
    p, score = uninorm.aggregate(probs) if uninorm is not None else argmax_mean(probs)
    return {"clip_probs": p, "clip_score": score}
