"""Public scoring contract of LUSWeb (pure Python: no Django import).

>>> from scoring.engine import load_scorer, read_clip
>>> clip = read_clip(path)              # uint8 [T,H,W] grey frames, fps, meta
>>> scorer = load_scorer()              # default weights; load_scorer(name_or_path) for others
>>> model = load_model("reg-stn")       # any format: a bundle, a network or the cascade
>>> result = scorer.score_clip(clip.frames)
>>> result.frame_probs, result.frame_scores, result.clip_probs, result.clip_score
>>> result.findings, result.six_class, result.aggregator, scorer.version

``scorer.score_clips([frames, ...])`` scores all clips of an exam in one batched pass;
``scorer.gradcam(frames, target)`` returns the heat map of the model behind the clip score (the clip
heads) on the frames it read, on the original frame grid.

Behind the contract: ``patients.imaging.core.reader`` (decoding), ``scoring.core.inference``
(``scorer``, ``aggregate``, ``exam``, ``six_class``) and ``scoring.core.labels`` (classes and
findings); the map of the whole core is the docstring of ``scoring.core``.
"""
from __future__ import annotations

from patients.imaging.core.reader import Clip, ClipReadError, read_clip
from scoring.core.inference.aggregate import AGGREGATORS
from scoring.core.inference.exam import ZONES_12, ZONES_BLUE6, ExamScore, exam_score
from scoring.core.inference.loader import AnyScorer, ShippedModel, load_model, shipped_models
from scoring.core.inference.scorer import DEFAULT_WEIGHTS, ClipResult, Scorer, load_scorer, shipped_weights
from scoring.core.inference.six_class import SIX_CLASSES
from scoring.core.labels import FINDINGS, SCORE_CLASSES

__all__ = [
    "AGGREGATORS", "AnyScorer", "ShippedModel", "load_model", "shipped_models", "shipped_weights", "Clip", "ClipReadError", "ClipResult", "DEFAULT_WEIGHTS", "ExamScore", "FINDINGS",
    "SCORE_CLASSES", "SIX_CLASSES", "Scorer", "ZONES_12", "ZONES_BLUE6", "exam_score", "load_scorer",
    "read_clip",
]
