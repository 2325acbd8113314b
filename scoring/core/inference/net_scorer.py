"""MCRFNet, Reg-STN and the cascade as scorers the product runs (the contract of :class:`Scorer`).

``lus_train --arch`` writes their weights files (``scoring.core.training.nets_run`` and
``cascade_run``); these classes load them and answer what the worker, the pages and ``lus_score``
ask of any scorer: ``features(clips)`` then ``_result(feature)`` (a :class:`ClipResult` for every
clip, every frame scored), ``score_clip(s)``, ``version``, ``meta``, ``to(device, half, batch)``
and ``gradcam``.

What each gives, and what it does not:

* **a network** (:class:`NetScorer`): its own probabilities of every frame (the preprocessing of
  training: sector, mask, crop on a ``size``-px canvas, quantised to uint8), the clip by the
  recipe's aggregator (mean, or Reg-STN's learned uninorm). MCRFNet adds its six-class head's
  frame classes (Hu et al.'s scale, from the network itself); Reg-STN adds the two crops it read
  of every frame, mapped back to the original frame (``localisation``, as fractions of the
  frame's width and height: its weak localisation, drawn by the clip viewer). Neither predicts
  the findings (A-lines, B-lines...): ``findings`` is empty, never invented. No out-of-domain check is fitted for them.
* **the cascade** (:class:`CascadeScorer`): the three members' clip probabilities vote (the rule
  of :mod:`.vote`); the frame curve is the mean of the members' frame probabilities; findings and
  the domain check are the Lite0 member's (the only member with finding heads), Reg-STN's crops
  its localisation.

The networks run in float32 on any device (``half`` is ignored: their scores in float16 have not
been checked against a tolerance). Heat maps: MCRFNet's is gradient x activation of its last
trunk map for the clip score (:func:`mcrfnet_attribution`; Hu et al. show Grad-CAM++ maps of
MCRFNet, the product uses gradient x activation as for the Lite0 heads, where it beat
Grad-CAM++ in a deletion check); Reg-STN and the cascade answer ``gradcam`` with a ValueError
saying that the crops are drawn instead.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from scoring.core.features.preprocess import Geometry, PreprocessConfig, preprocess_clip
from scoring.core.inference.aggregate import UninormAggregator
from scoring.core.inference.bundle import Bundle
from scoring.core.inference.gradcam import ClipGradcam, contribution_maps, one_scale, to_original
from scoring.core.inference.networks import NetRecipe, build_net, clip_prediction, frame_outputs, net_input
from scoring.core.inference.scorer import ClipResult, ClipSource, Scorer
from scoring.core.inference.six_class import SixClassResult
from scoring.core.inference.vote import vote_batch
from scoring.core.labels import SCORE_CLASSES
from scoring.core.labels_six import SIX_CLASS_NAMES, SIX_CLASS_VALUES
from scoring.core.models.mcrfnet import MCRFNet
from scoring.core.models.regstn import crop_boxes

NET_FORMAT = "lusweb-net-1"
CASCADE_FORMAT = "lusweb-cascade-1"


def original_boxes(theta: np.ndarray, geom: Geometry) -> np.ndarray:
    """Reg-STN's crops ``theta [T, K, 2, 3]`` (normalised coordinates of the model's canvas) ->
    boxes ``[T, K, 4]`` = (x0, y0, x1, y1) in pixels of the original frame, clipped to it."""
    canvas = crop_boxes(torch.as_tensor(np.asarray(theta, np.float64)), geom.size, geom.size).numpy()
    y0, y1, x0, x1 = geom.bbox
    nh, nw = geom.new_hw
    oy, ox = geom.offset
    # The crop of the original frame (bbox) was resized to new_hw and placed at offset on the canvas.
    sx, sy = (x1 - x0) / nw, (y1 - y0) / nh
    out = np.empty_like(canvas)
    out[..., 0] = x0 + (canvas[..., 0] - ox) * sx
    out[..., 2] = x0 + (canvas[..., 2] - ox) * sx
    out[..., 1] = y0 + (canvas[..., 1] - oy) * sy
    out[..., 3] = y0 + (canvas[..., 3] - oy) * sy
    h, w = geom.orig_shape
    out[..., 0::2] = out[..., 0::2].clip(0, w)
    out[..., 1::2] = out[..., 1::2].clip(0, h)
    return out


def six_class_from_probs(six_probs: np.ndarray) -> SixClassResult:
    """MCRFNet's six-class head ``[T, 6]`` -> each frame's most probable class and the mean value."""
    names = [SIX_CLASS_NAMES[int(i)] for i in np.asarray(six_probs).argmax(1)]
    values = np.array([SIX_CLASS_VALUES[n] for n in names], np.float64)
    return SixClassResult(names, values, float(values.mean()) if len(values) else 0.0)


def _frames(source: ClipSource) -> np.ndarray:
    return np.asarray(source() if callable(source) else source)


@dataclass
class NetScorer:
    """A trained frame network with its preprocessing: frames in, Soldati probabilities out."""

    recipe: NetRecipe
    cfg: PreprocessConfig
    model: nn.Module
    meta: dict[str, object]
    uninorm: UninormAggregator | None = None
    batch: int = 64

    @property
    def version(self) -> str:
        """The model version of every score it gives."""
        return str(self.meta["version"])

    @property
    def device(self) -> torch.device:
        """Where the network runs."""
        return next(self.model.parameters()).device

    def to(self, device: torch.device | str, half: bool = False, batch: int | None = None) -> NetScorer:
        """Move the network to ``device`` (float32 there: ``half`` is ignored, see the module doc)."""
        self.model.to(torch.device(device))
        if batch is not None:
            self.batch = max(1, int(batch))
        return self

    def inputs(self, frames: np.ndarray) -> torch.Tensor:
        """Decoded frames ``[T, H, W(, 3)]`` -> network input, preprocessed as in training (uint8 canvas)."""
        return self._inputs(frames)[0]

    def _inputs(self, frames: np.ndarray) -> tuple[torch.Tensor, Geometry]:
        x, geom = preprocess_clip(frames, self.cfg)
        return net_input(self.recipe, np.round(x * 255).astype(np.uint8)), geom

    def score_frames(self, frames: np.ndarray) -> tuple[np.ndarray, dict[str, object]]:
        """Per-frame probabilities ``[T, 4]`` and the clip prediction (probabilities, score)."""
        probs = frame_outputs(self.model, self.recipe, self.inputs(frames), self.batch).probs
        return probs, clip_prediction(probs, self.uninorm)

    def features(self, clips: Sequence[ClipSource]) -> list[dict[str, np.ndarray]]:
        """Each clip's network outputs: ``frame`` and ``probs`` (the frame probabilities; the
        severity model refuses another scorer's ``frame`` by version), ``six`` (MCRFNet's six-class
        probabilities), ``boxes`` (Reg-STN's crops as fractions of the frame)."""
        out = []
        for source in clips:
            x, geom = self._inputs(_frames(source))
            o = frame_outputs(self.model, self.recipe, x, self.batch)
            feat = {"frame": o.probs.astype(np.float32), "probs": o.probs}
            if o.six_probs is not None:
                feat["six"] = o.six_probs
            if o.theta is not None:  # as fractions of the frame's width and height
                h, w = geom.orig_shape
                feat["boxes"] = original_boxes(o.theta, geom) / np.array([w, h, w, h], np.float64)
            out.append(feat)
        return out

    def _result(self, feat: dict[str, np.ndarray]) -> ClipResult:
        probs = np.asarray(feat["probs"], np.float64)
        clip = clip_prediction(probs, self.uninorm)
        return ClipResult(
            frame_probs=probs, frame_scores=probs.argmax(1).astype(int),
            clip_probs=np.asarray(clip["clip_probs"], np.float64), clip_score=int(clip["clip_score"]),  # type: ignore[call-overload]
            findings={}, frame_findings=np.zeros((len(probs), 0)),
            six_class=six_class_from_probs(feat["six"]) if "six" in feat else None,
            aggregator=self.recipe.aggregator, model=self.version,
            localisation=feat.get("boxes"))

    def score_clips(self, clips: Sequence[ClipSource]) -> list[ClipResult]:
        """Score several clips, every frame of each."""
        return [self._result(f) for f in self.features(clips)]

    def score_clip(self, frames: np.ndarray) -> ClipResult:
        """Score one clip."""
        return self.score_clips([frames])[0]

    def gradcam(self, frames: np.ndarray, target: int | None = None) -> ClipGradcam:
        """MCRFNet's heat map of the clip score on every frame (:func:`mcrfnet_attribution`) on the
        original frame grid; Reg-STN has none (ValueError: its two crops are drawn instead)."""
        if self.recipe.arch != "mcrfnet":
            raise ValueError(f"{self.version} ({self.recipe.arch}) has no heat map in LUSWeb; its two crops are "
                             "drawn on every frame instead")
        assert isinstance(self.model, MCRFNet)  # the recipe's architecture built it
        x, geom = self._inputs(np.asarray(frames))
        want = self.score_clips([frames])[0].clip_score if target is None else int(target)
        canvas = mcrfnet_attribution(self.model, x, want, self.batch)
        return ClipGradcam(NETWORK_MAP, tuple(range(len(x))), tuple(to_original(canvas, geom)), want)


#: ``ClipGradcam.model`` of a network's map (every frame read by the network itself).
NETWORK_MAP = "network"


def mcrfnet_attribution(model: MCRFNet, x: torch.Tensor, target: int, batch: int = 64) -> np.ndarray:
    """Gradient x activation of MCRFNet's last trunk map for the clip score ``target``, per frame
    of the input ``x`` [T, 3, S, S]: [T, S, S] on the canvas, positive part, one scale.

    The explained quantity is what decides the clip score: the log-odds of the target's mean
    frame probability, ``L = log(p / (1 - p))``, ``p = mean_t softmax(z_t)[target]``. Its gradient
    with respect to frame t's probabilities is ``1 / (T p (1 - p))`` on the target, so frames are
    explained in chunks of ``batch`` with that weight (the same map as one pass over all frames).
    After the trunk come a global mean and a linear head, so on a single frame this is CAM: the
    places' contributions add up to the first-order effect of the whole map.
    """
    model.eval()
    device = next(model.parameters()).device
    with torch.inference_mode():
        p = float(torch.cat([torch.softmax(model(x[i:i + batch].to(device)).score_logits.float(), 1)[:, target]
                             for i in range(0, len(x), batch)]).mean())
    p = min(max(p, 1e-12), 1 - 1e-12)
    weight = 1.0 / (len(x) * p * (1.0 - p))
    out = []
    for i in range(0, len(x), batch):
        with torch.enable_grad():
            maps = model.trunk(model.stem(model.fusion(x[i:i + batch].to(device))))
            maps.retain_grad()
            probs = torch.softmax(model.score_head(maps.mean((2, 3))).float(), 1)[:, target]
            model.zero_grad(set_to_none=True)
            (weight * probs.sum()).backward()
        out.append(contribution_maps([maps], int(x.shape[-1])).cpu().numpy())
    return one_scale(np.concatenate(out, 0)) if out else np.zeros((0, *x.shape[-2:]), np.float32)


def _net(recipe: dict[str, Any], state: dict[str, Any], cfg: PreprocessConfig, meta: dict[str, object],
         uninorm: dict[str, Any] | None, where: str) -> NetScorer:
    r = NetRecipe.from_dict(recipe)
    model = build_net(r)
    model.load_state_dict(state)
    agg = None
    if r.aggregator == "uninorm":
        if not uninorm:
            raise ValueError(f"{where}: the recipe aggregates with the uninorm but the file carries none")
        agg = UninormAggregator(len(SCORE_CLASSES))
        agg.load_state_dict(uninorm)
        agg.eval()
    return NetScorer(r, cfg, model.eval(), meta, agg)


def load_net(path: str | Path) -> NetScorer:
    """Load a network weights file; ValueError naming the file when it is not one."""
    raw = torch.load(str(path), map_location="cpu", weights_only=True)
    if not isinstance(raw, dict) or raw.get("format") != NET_FORMAT:
        raise ValueError(f"{path} is not a LUSWeb network weights file (format {NET_FORMAT})")
    return _net(raw["recipe"], raw["state"], PreprocessConfig.from_dict(raw["preprocess"]), dict(raw["meta"]),
                raw.get("uninorm"), str(path))


@dataclass
class CascadeScorer:
    """A trained cascade: the Lite0 member (a default-style scorer) and the two networks, voting per clip."""

    lite: Scorer
    nets: list[NetScorer]
    meta: dict[str, object]

    @property
    def version(self) -> str:
        """The model version of every score it gives."""
        return str(self.meta["version"])

    @property
    def device(self) -> torch.device:
        """Where the members run."""
        return self.lite.device

    def to(self, device: torch.device | str, half: bool = False, batch: int | None = None) -> CascadeScorer:
        """Move every member to ``device``."""
        self.lite.to(device, half=half, batch=batch)
        for n in self.nets:
            n.to(device, batch=batch)
        return self

    def score_frames(self, frames: np.ndarray) -> tuple[list[np.ndarray], dict[str, object]]:
        """Each member's clip probabilities and the vote (probabilities, score, rule)."""
        r = self.score_clip(frames)
        return [np.asarray(p, float) for p in r.members.values()], {
            "clip_probs": r.clip_probs, "clip_score": r.clip_score, "rule": r.aggregator.removeprefix("vote:")}

    def features(self, clips: Sequence[ClipSource]) -> list[dict[str, Any]]:
        """Every member's features of each clip (the clip is read once)."""
        out = []
        for source in clips:
            frames = _frames(source)
            lite = self.lite.features([frames])[0]
            out.append({"lite": lite, "nets": [n.features([frames])[0] for n in self.nets], "frame": lite["frame"]})
        return out

    def _result(self, feat: dict[str, Any]) -> ClipResult:
        lite = self.lite._result(feat["lite"])
        nets = [n._result(f) for n, f in zip(self.nets, feat["nets"], strict=True)]
        members = {"lite0": lite.clip_probs, **{n.recipe.arch: r.clip_probs for n, r in zip(self.nets, nets, strict=True)}}
        probs, classes, rules = vote_batch([np.asarray(p, float)[None] for p in members.values()])
        frame = np.mean([lite.frame_probs, *(r.frame_probs for r in nets)], axis=0)
        boxes = next((r.localisation for r in nets if r.localisation is not None), None)
        return ClipResult(
            frame_probs=frame, frame_scores=frame.argmax(1).astype(int), clip_probs=probs[0],
            clip_score=int(classes[0]), findings=lite.findings, frame_findings=lite.frame_findings,
            six_class=lite.six_class, aggregator=f"vote:{rules[0]}", model=self.version,
            members={k: np.asarray(v, float).round(5).tolist() for k, v in members.items()},
            domain_distance=lite.domain_distance, in_domain=lite.in_domain, domain_threshold=lite.domain_threshold,
            localisation=boxes)

    def score_clips(self, clips: Sequence[ClipSource]) -> list[ClipResult]:
        """Score several clips."""
        return [self._result(f) for f in self.features(clips)]

    def score_clip(self, frames: np.ndarray) -> ClipResult:
        """Score one clip."""
        return self.score_clips([frames])[0]

    def gradcam(self, frames: np.ndarray, target: int | None = None) -> ClipGradcam:
        """Not implemented for a vote of three networks: ValueError saying so."""
        raise ValueError(f"{self.version} is a vote of three networks and has no single heat map; Reg-STN's crops "
                         "are drawn on every frame instead")


def load_cascade(path: str | Path) -> CascadeScorer:
    """Load a cascade weights file; ValueError naming the file when it is not one."""
    raw = torch.load(str(path), map_location="cpu", weights_only=True)
    if not isinstance(raw, dict) or raw.get("format") != CASCADE_FORMAT:
        raise ValueError(f"{path} is not a LUSWeb cascade weights file (format {CASCADE_FORMAT})")
    cfg = PreprocessConfig.from_dict(raw["preprocess"])
    nets = [_net(m["recipe"], m["state"], cfg, {"version": f"{raw['meta']['version']}:{m['recipe']['arch']}"}, None,
                 str(path)) for m in raw["members"].values()]
    return CascadeScorer(Scorer(Bundle.from_state(raw["lite0"]), path), nets, dict(raw["meta"]))
