"""Six-class LUS scale of Hu et al. derived from per-frame findings.

Classes and their severity values:

=====================  =====  ==========================================================
class                  value  rule on the frame's findings (probability >= threshold)
=====================  =====  ==========================================================
A-line                 0      none of the rules below (normal aeration, A-lines)
A&B-line               1      discrete B-lines *and* A-lines, no confluent B, no consol.
B1-line                2      discrete B-lines, no A-lines, no confluent B, no consol.
B1&B2-line             2.5    confluent B-lines *and* discrete B-lines, no consolidation
B2-line                3      confluent B-lines without discrete B-lines, no consolidation
consolidation          4      consolidation (dominates everything else)
=====================  =====  ==========================================================

The exam (or clip) severity is the mean of the frame values, 0-4.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scoring.core.labels import FINDINGS

SIX_CLASSES: tuple[tuple[str, float], ...] = (
    ("A-line", 0.0),
    ("A&B-line", 1.0),
    ("B1-line", 2.0),
    ("B1&B2-line", 2.5),
    ("B2-line", 3.0),
    ("consolidation", 4.0),
)


@dataclass
class SixClassResult:
    """Per-frame Hu class names and values, and their mean (0-4)."""

    frame_classes: list[str]
    frame_values: np.ndarray
    mean: float

    def to_dict(self) -> dict[str, object]:
        """JSON-friendly dict."""
        return {"frame_classes": self.frame_classes, "frame_values": [float(v) for v in self.frame_values],
                "mean": round(float(self.mean), 5)}


def six_class_frame(a_lines: bool, b_lines: bool, confluent: bool, consolidation: bool) -> tuple[str, float]:
    """Map one frame's binary findings to its Hu class (name, value)."""
    if consolidation:
        return SIX_CLASSES[5]
    if confluent and b_lines:
        return SIX_CLASSES[3]
    if confluent:
        return SIX_CLASSES[4]
    if b_lines and a_lines:
        return SIX_CLASSES[1]
    if b_lines:
        return SIX_CLASSES[2]
    return SIX_CLASSES[0]


def six_class_from_findings(frame_findings: np.ndarray, threshold: float = 0.5) -> SixClassResult:
    """``frame_findings``: probabilities [T, len(FINDINGS)] in FINDINGS order."""
    ff = np.asarray(frame_findings, float).reshape(-1, len(FINDINGS)) >= threshold
    ia, ib, ic, io = (FINDINGS.index(n) for n in ("a_lines", "b_lines", "confluent_b_lines", "consolidation"))
    names: list[str] = []
    vals = np.zeros(len(ff))
    for t, row in enumerate(ff):
        n, v = six_class_frame(bool(row[ia]), bool(row[ib]), bool(row[ic]), bool(row[io]))
        names.append(n)
        vals[t] = v
    return SixClassResult(names, vals, float(vals.mean()) if len(vals) else 0.0)
