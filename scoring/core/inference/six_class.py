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

The exam (or clip) severity is the mean of the frame values, 0-4: for an exam, the mean over all
frames of its scored clips (:func:`six_class_pooled`), so a clip weighs by its frame count.
"""
from __future__ import annotations

import ast
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

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
#: Class name -> severity value.
SIX_CLASS_VALUES: dict[str, float] = dict(SIX_CLASSES)
#: How every page, export and API response names the scale.
SIX_CLASS_SCALE = "six-class scale of Hu et al. 2021"


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


def six_class_pooled(clips: Iterable[tuple[float, int]]) -> float | None:
    """Mean of the frame values over all frames of several clips, from each clip's ``(mean,
    frame count)``: a clip weighs by its frames (a 300-frame clip says more about the lung than a
    single image). None when no clip has a frame."""
    total = frames = 0.0
    for mean, count in clips:
        total += float(mean) * int(count)
        frames += int(count)
    return total / frames if frames else None


def six_class_dominant(frame_classes: Sequence[str]) -> str | None:
    """The class of most frames; a tie goes to the more severe class (the one a reader must not
    miss). None without frames."""
    counts = Counter(c for c in frame_classes if c in SIX_CLASS_VALUES)
    if not counts:
        return None
    return max(counts, key=lambda c: (counts[c], SIX_CLASS_VALUES[c]))


@dataclass(frozen=True)
class StoredSixClass:
    """A clip's six-class result as read back from storage: its mean and, if kept, frame classes."""

    mean: float
    frame_classes: tuple[str, ...]


# Scores stored before the six-class result was written as a dict kept its dataclass repr:
# "SixClassResult(frame_classes=[...], frame_values=array([...]), mean=1.25)".
_REPR_CLASSES = re.compile(r"frame_classes=(\[[^\]]*\])")
_REPR_MEAN = re.compile(r"mean=(?:np\.float64\()?([-+0-9.eE]+|nan)\)*\s*$")


def six_class_stored(value: Any) -> StoredSixClass | None:
    """Read a stored six-class result: the dict of :meth:`SixClassResult.to_dict` (``mean``,
    ``frame_classes``), or the repr string older scores kept; None for anything else."""
    if isinstance(value, dict):
        mean = value.get("mean")
        classes = value.get("frame_classes")
        if not isinstance(mean, int | float) or isinstance(mean, bool):
            return None
        return StoredSixClass(float(mean), tuple(str(c) for c in classes) if isinstance(classes, list) else ())
    if not isinstance(value, str) or not value.startswith("SixClassResult("):
        return None
    found = _REPR_MEAN.search(value)
    if found is None:
        return None
    listed = _REPR_CLASSES.search(value)
    try:
        classes = ast.literal_eval(listed.group(1)) if listed else []
        return StoredSixClass(float(found.group(1)), tuple(str(c) for c in classes))
    except (ValueError, SyntaxError):
        return None
