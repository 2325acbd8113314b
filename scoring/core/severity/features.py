"""Zone features for the severity model, from one pass of the frame scorer.

A zone's feature vector is ``[clip class probabilities (4), finding probabilities (6),
temporal mean of the frame scorer's frame features (D)]``: temporal average pooling of the
frame features as Xue et al. do, plus the scorer's own read-out. At test time up to 30 frames
are sampled five times per clip and the five predictions vote (Xue et al.).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from scoring.core.labels import FINDINGS
from scoring.core.severity.risk import SEVERE_FROM, SEVERITY_CLASSES


def score_with_features(scorer: Any, clips: Sequence[Any]) -> list[tuple[Any, np.ndarray]]:
    """Score clips (frames, or functions that read them) and keep each clip's per-frame features
    [T, D]: one CNN pass for both."""
    feats = scorer.features(clips)
    return [(scorer._result(f), np.asarray(f["frame"], np.float32)) for f in feats]


def zone_feature(result: Any, frame_features: np.ndarray, frames: np.ndarray | None = None) -> np.ndarray:
    """The zone feature vector; ``frames`` selects the frames to pool (default: all)."""
    ff = frame_features if frames is None else frame_features[frames]
    head = np.concatenate([np.asarray(result.clip_probs, np.float32),
                           np.asarray([result.findings[name] for name in FINDINGS], np.float32)])
    return np.concatenate([head, ff.mean(0).astype(np.float32)])


def sampled_zone_features(result: Any, frame_features: np.ndarray, *, n_sets: int = 5, max_frames: int = 30,
                          seed: int = 0) -> list[np.ndarray]:
    """``n_sets`` feature vectors, each pooling a random subset of at most ``max_frames`` frames.

    A still image (one frame) or a short clip gives identical sets, so the vote is unanimous.
    """
    rng = np.random.default_rng(seed)
    t = len(frame_features)
    out = []
    for _ in range(n_sets):
        idx = np.sort(rng.choice(t, size=min(t, max_frames), replace=False))
        out.append(zone_feature(result, frame_features, idx))
    return out


#: Where the parts of a zone feature vector sit: class probabilities, then findings, then pooling.
HEAD_PROBS = slice(0, 4)
HEAD_FINDINGS = slice(4, 4 + len(FINDINGS))


def with_reading(vectors: np.ndarray, score: int, findings: Mapping[str, bool]) -> np.ndarray:
    """Zone feature vectors ``[..., D]`` whose read-out is a reader's instead of the scorer's: the 4
    class probabilities become the one-hot of ``score`` and each finding the reader stated becomes
    1 or 0 (a finding the reader left unstated keeps the scorer's probability). The pooled frame
    features - what the CNN saw - stay."""
    out = np.array(vectors, dtype=np.float32, copy=True)
    out[..., HEAD_PROBS] = np.eye(4, dtype=np.float32)[int(score)]
    for i, name in enumerate(FINDINGS):
        if name in findings:
            out[..., HEAD_FINDINGS.start + i] = 1.0 if findings[name] else 0.0
    return out


def vote(predictions: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Majority vote of several severity predictions; probabilities and attention are averaged.

    A tie goes to the class with the higher mean probability.
    """
    labels = [p["label"] for p in predictions]
    probs = np.mean([p["probs"] for p in predictions], axis=0)
    counts = {label: labels.count(label) for label in set(labels)}
    best = max(counts.values())
    tied = [label for label, c in counts.items() if c == best]
    label = max(tied, key=lambda lab: probs[SEVERITY_CLASSES.index(lab)])
    zones = predictions[0]["zone_attention"].keys()
    attention = {z: float(np.mean([p["zone_attention"][z] for p in predictions])) for z in zones}
    out = {"label": label, "probs": [float(p) for p in probs], "severe_probability": float(probs[SEVERE_FROM:].sum()),
           "zone_attention": attention, "votes": counts}
    if all("raw_probs" in p for p in predictions):
        out["raw_probs"] = [float(p) for p in np.mean([p["raw_probs"] for p in predictions], axis=0)]
    return out
