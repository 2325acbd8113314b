"""What every LUS scorer predicts: the classes of its severity head and of its findings head.

Fixed order: the heads' outputs, the weights files, the stored scores and the API follow it.
"""
from __future__ import annotations

#: Class names of the Soldati severity head and the findings head (fixed order).
SCORE_CLASSES: tuple[str, ...] = ("score_0", "score_1", "score_2", "score_3")
FINDINGS: tuple[str, ...] = (
    "a_lines",
    "b_lines",
    "confluent_b_lines",
    "consolidation",
    "pleural_irregularity",
    "effusion",
)

N_CLASSES = len(SCORE_CLASSES)
