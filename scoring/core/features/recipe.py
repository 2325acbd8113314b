"""The recipe: everything that defines a model, stored in every weights file.

It lives with the featuriser because the features are most of it (canvas, taps, views) and
every layer above - the bundle, the scorer, training - reads it. Recipe ``frozen`` (the
default weights):

1. every clip is preprocessed (:mod:`scoring.core.features.preprocess`) and passed through the
   ImageNet EfficientNet-Lite0 truncated after ``max(taps)`` (frozen);
2. per-frame feature ``f_t`` = pooled maps of the tapped blocks (mean, max, three depth
   bands) + hand-crafted physics features (:mod:`scoring.core.features.handcrafted`);
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

from dataclasses import dataclass

from scoring.core.features.preprocess import PreprocessConfig


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
