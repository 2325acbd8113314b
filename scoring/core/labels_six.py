"""Six-class training labels (Hu et al. 2021) derived from a COVID-BLUES expert's clip annotation.

The expert gave every clip a Soldati score (0-3), an A-lines flag, a B-lines flag (yes/no) and,
for a few clips, a free-text comment. The six classes and their severity values are those the
product shows (``scoring.core.inference.six_class``): A-line 0, A&B-line 1, B1-line 2,
B1&B2-line 2.5, B2-line 3, consolidation 4. Rules, first match wins (``docs/six-class-labels.md``
has the table and the counts on the 235 clips):

1. **not covered**: the comment says the finding is not covered by the scoring (the expert's
   "massive pleural effusion, this is not really covered by the scoring") -> unlabelled;
2. **consolidation**: the comment names a consolidation ("consolidat...": "small consolidated
   areas", "subpleural consolidations") not preceded by "no " -> consolidation (4);
3. **white lung**: the comment names a white lung ("white lung", "white lung areal") ->
   B1&B2-line (2.5) when the B-lines flag is yes (single B-lines beside the white area),
   else B2-line (3);
4. **score 3** (Soldati: dense, largely extended white lung) -> B1&B2-line when the B-lines flag
   is yes, else B2-line (the expert wrote "no single B-lines, B-lines are fused together into the
   picture of a white lung" on such a clip with the flag "no");
5. **B-lines, score 0-2**: A-lines flag yes -> A&B-line (1); no -> B1-line (2);
6. **no B-lines, score 0** -> A-line (0), whatever the A-lines flag (normal aeration: the
   product's frame rule also gives A-line to a frame with no finding);
7. otherwise (no B-lines with a score of 1 or 2: the score says abnormal, the flags name no
   artefact a class could come from; or a missing B-lines flag) -> unlabelled.

Pleura comments ("broken", "interrupted", "indented", "thickened", "intact" pleura line) and
anatomy ("liver on the right side") do not change the class: the six classes are artefact classes.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

#: The six classes and their severity values, in the order of MCRFNet's six-class head; names as
#: ``scoring.core.inference.six_class.SIX_CLASSES`` (a test keeps them equal).
SIX_CLASS_NAMES: tuple[str, ...] = ("A-line", "A&B-line", "B1-line", "B1&B2-line", "B2-line", "consolidation")
SIX_CLASS_VALUES: dict[str, float] = dict(zip(SIX_CLASS_NAMES, (0.0, 1.0, 2.0, 2.5, 3.0, 4.0), strict=True))

_NOT_COVERED = re.compile(r"not (?:really )?covered by the scor", re.IGNORECASE)
_CONSOLIDATION = re.compile(r"(?<!no )(?<!without )\bconsolidat", re.IGNORECASE)
_WHITE_LUNG = re.compile(r"(?<!no )\bwhite lung", re.IGNORECASE)


@dataclass(frozen=True)
class SixClassLabel:
    """A derived label: class name, its severity value and the rule (1-7, docstring) that gave it."""

    name: str | None
    rule: int

    @property
    def value(self) -> float | None:
        return None if self.name is None else SIX_CLASS_VALUES[self.name]

    @property
    def index(self) -> int | None:
        """Position in :data:`SIX_CLASS_NAMES` (the six-class head's target), None when unlabelled."""
        return None if self.name is None else SIX_CLASS_NAMES.index(self.name)


def six_class_label(score: int, a_lines: bool | None, b_lines: bool | None, comment: str = "") -> SixClassLabel:
    """The six-class label of one clip from its expert annotation (rules in the module docstring)."""
    text = comment or ""
    if _NOT_COVERED.search(text):
        return SixClassLabel(None, 1)
    if _CONSOLIDATION.search(text):
        return SixClassLabel("consolidation", 2)
    if _WHITE_LUNG.search(text):
        return SixClassLabel("B1&B2-line" if b_lines else "B2-line", 3)
    if score >= 3:
        return SixClassLabel("B1&B2-line" if b_lines else "B2-line", 4)
    if b_lines:
        return SixClassLabel("A&B-line" if a_lines else "B1-line", 5)
    if b_lines is False and score == 0:
        return SixClassLabel("A-line", 6)
    return SixClassLabel(None, 7)


def six_class_counts(labels: Iterable[SixClassLabel]) -> dict[str | None, int]:
    """How many clips each class got (``None``: unlabelled), every class listed, in head order."""
    counts = Counter(label.name for label in labels)
    return {**{n: counts.get(n, 0) for n in SIX_CLASS_NAMES}, None: counts.get(None, 0)}
