"""Grad-CAM++ (Chattopadhay et al. 2018) for the per-frame severity head.

The class score is the frame head's severity logit; the map is taken at the first (finest)
tapped block of the backbone. Hand-crafted features enter the head as constants (they are
not differentiable), so the map explains the CNN part of the decision. The map is upsampled
to the processed canvas and then mapped back through the crop / resize / pad of the
preprocessing onto the ORIGINAL frame grid; outside the ultrasound sector it is 0.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from scoring.core.features.featurizer import Featurizer
from scoring.core.features.handcrafted import handcrafted_features
from scoring.core.features.preprocess import Geometry, canvas_to_original
from scoring.core.inference.bundle import LinearModel


def gradcam_pp_weights(acts: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """Grad-CAM++ channel weights for activations/gradients [N,C,h,w] -> [N,C].

    alpha = g^2 / (2 g^2 + sum_ij(A) g^3) (0/0 -> 0), w_k = sum_ij alpha * relu(g), the
    closed form for an exponential of the class score.
    """
    g2 = grads.pow(2)
    g3 = grads.pow(3)
    denom = 2 * g2 + acts.sum((2, 3), keepdim=True) * g3
    denom = torch.where(denom.abs() > 1e-12, denom, torch.ones_like(denom))
    alpha = g2 / denom
    return (alpha * F.relu(grads)).sum((2, 3))


def _normalise(m: np.ndarray) -> np.ndarray:
    m = np.nan_to_num(np.asarray(m, np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    m = np.clip(m, 0.0, None)
    mx = float(m.max()) if m.size else 0.0
    return (m / mx).astype(np.float32) if mx > 0 else np.zeros_like(m, dtype=np.float32)


def gradcam_pp(featurizer: Featurizer, head: LinearModel, x: np.ndarray, geom: Geometry, indices: Sequence[int],
               target: int | None = None) -> list[np.ndarray]:
    """Maps (float32 [H,W], finite, in [0,1]) for frames ``indices`` of the model input ``x``
    ([T,S,S], preprocessed with geometry ``geom``), on the original frame grid.

    ``head``: the frame severity head reading ``featurizer``'s frame features; ``target``:
    severity class to explain; default: each frame's predicted class.
    """
    idx = [int(i) for i in indices]
    if not idx:
        return []
    recipe = featurizer.recipe
    hand = handcrafted_features(x)[idx] if recipe.hand else np.zeros((len(idx), 0), np.float32)
    inp = featurizer.to_input(x[idx])
    with torch.enable_grad():
        maps = featurizer.model.forward_features(inp, recipe.taps)
        cam_layer = maps[0]
        cam_layer.retain_grad()
        full = torch.cat([featurizer.pool(maps), torch.from_numpy(hand)], 1)
        mu, sd = torch.from_numpy(head.mu), torch.from_numpy(head.sd)
        logits = ((full - mu) / sd) @ torch.from_numpy(np.asarray(head.w, np.float32)).T + torch.from_numpy(
            np.asarray(head.b, np.float32))
        cls = logits.argmax(1) if target is None else torch.full((len(idx),), int(target))
        score = logits.gather(1, cls[:, None]).sum()
        featurizer.model.zero_grad(set_to_none=True)
        score.backward()
    acts = cam_layer.detach()
    grads = cam_layer.grad.detach() if cam_layer.grad is not None else torch.zeros_like(acts)
    w = gradcam_pp_weights(acts, grads)
    cam = F.relu((w[:, :, None, None] * acts).sum(1, keepdim=True))
    cams = F.interpolate(cam, size=(geom.size, geom.size), mode="bilinear", align_corners=False)[:, 0].numpy()
    return [_normalise(canvas_to_original(_normalise(c), geom)) for c in cams]
