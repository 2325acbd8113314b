"""Agreement of the AI's zone scores with a rater's: pure maths, no Django import.

Reuses ``scoring.core.stats`` (confusion matrix, quadratic weighted kappa) so training,
evaluation and the platform report the same numbers.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from scoring.core.stats import confusion, quadratic_kappa

N_CLASSES = 4


@dataclass(frozen=True)
class Agreement:
    """``confusion[r][m]``: zones the rater scored ``r`` and the model ``m``."""

    n: int
    accuracy: float | None
    within1: float | None
    qwk: float | None
    confusion: list[list[int]]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def agreement(rater: Sequence[int], model: Sequence[int]) -> Agreement:
    """Exact agreement, agreement within one point, quadratic weighted kappa and the 4x4 confusion
    matrix of paired Soldati scores (0-3). With no pairs the rates are None."""
    if len(rater) != len(model):
        raise ValueError(f"{len(rater)} rater scores but {len(model)} model scores")
    for value in (*rater, *model):
        if not 0 <= int(value) < N_CLASSES:
            raise ValueError(f"score {value!r} is outside 0-{N_CLASSES - 1}")
    n = len(rater)
    matrix = confusion(rater, model, N_CLASSES).tolist()
    if n == 0:
        return Agreement(0, None, None, None, matrix)
    exact = sum(1 for r, m in zip(rater, model, strict=True) if int(r) == int(m))
    near = sum(1 for r, m in zip(rater, model, strict=True) if abs(int(r) - int(m)) <= 1)
    return Agreement(n, exact / n, near / n, quadratic_kappa(rater, model, N_CLASSES), matrix)
