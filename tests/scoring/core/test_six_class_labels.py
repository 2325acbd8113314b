"""Six-class labels from the COVID-BLUES expert's annotation: each rule by hand, and the real counts."""
from __future__ import annotations

from pathlib import Path

import pytest

from scoring.core.labels_six import SIX_CLASS_NAMES, six_class_counts, six_class_label
from scoring.core.training.covid_blues import clips


@pytest.mark.parametrize(("score", "a", "b", "comment", "name", "rule"), [
    # 1: the expert says the scoring does not cover it
    (2, False, True, "massive pleural effusion, this is not really covered by the scoring", None, 1),
    # 2: a consolidation in the comment wins over flags and score
    (2, True, True, "broken pleura line, small consolidated areas, B-lines", "consolidation", 2),
    (1, True, True, "Pleura line intact, little subpleural consolidations", "consolidation", 2),
    (1, True, True, "no consolidation, multiple B-lines", "A&B-line", 5),  # negated: not a consolidation
    # 3: white lung in the comment
    (2, True, True, "broken pleura line, B-lines, white lung areal", "B1&B2-line", 3),
    (3, False, False, "no single B-lines, B-lines are fused together into the picture of a white lung",
     "B2-line", 3),
    # 4: Soldati 3 is a white lung
    (3, True, True, "", "B1&B2-line", 4),
    (3, False, True, "", "B1&B2-line", 4),
    (3, True, False, "", "B2-line", 4),
    (3, False, False, "", "B2-line", 4),
    # 5: B-lines at scores 0-2, split by the A-lines flag; pleura comments change nothing
    (0, True, True, "", "A&B-line", 5),
    (2, True, True, "broken pleura line", "A&B-line", 5),
    (1, False, True, "liver on the right side while inspiration", "B1-line", 5),
    (0, False, True, "", "B1-line", 5),
    # 6: no B-lines at score 0
    (0, True, False, "", "A-line", 6),
    (0, False, False, "", "A-line", 6),
    # 7: unlabelled
    (1, True, False, "", None, 7),
    (2, True, False, "", None, 7),
    (2, False, False, "", None, 7),
    (0, True, None, "", None, 7),
])
def test_each_rule(score: int, a: bool | None, b: bool | None, comment: str, name: str | None, rule: int) -> None:
    label = six_class_label(score, a, b, comment)
    assert (label.name, label.rule) == (name, rule)
    if name is None:
        assert label.value is None and label.index is None
    else:
        assert label.index == SIX_CLASS_NAMES.index(name)


def test_values_and_counts() -> None:
    labels = [six_class_label(s, a, b, c) for s, a, b, c in
              [(0, True, False, ""), (0, True, True, ""), (0, False, True, ""), (2, True, True, "white lung"),
               (3, False, False, ""), (1, False, False, "consolidation"), (1, True, False, "")]]
    assert [lab.value for lab in labels] == [0.0, 1.0, 2.0, 2.5, 3.0, 4.0, None]
    assert six_class_counts(labels) == {"A-line": 1, "A&B-line": 1, "B1-line": 1, "B1&B2-line": 1, "B2-line": 1,
                                        "consolidation": 1, None: 1}


def test_counts_on_the_covid_blues_clips(shared_data: Path) -> None:
    found = clips(shared_data / "covid-blues")
    assert len(found) == 235
    labels = [six_class_label(c.score, c.a_lines, c.b_lines, c.comment) for c in found]
    assert six_class_counts(labels) == {"A-line": 43, "A&B-line": 97, "B1-line": 38, "B1&B2-line": 19,
                                        "B2-line": 12, "consolidation": 6, None: 20}
    by_rule = {r: sum(lab.rule == r for lab in labels) for r in range(1, 8)}
    assert by_rule == {1: 1, 2: 6, 3: 2, 4: 29, 5: 135, 6: 43, 7: 19}
