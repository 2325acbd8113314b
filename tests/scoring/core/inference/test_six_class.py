from __future__ import annotations

import numpy as np
import pytest

from scoring.core.inference.six_class import SIX_CLASSES, six_class_frame, six_class_from_findings


@pytest.mark.parametrize(
    ("a", "b", "c", "o", "name", "value"),
    [
        (True, False, False, False, "A-line", 0.0),
        (False, False, False, False, "A-line", 0.0),
        (True, True, False, False, "A&B-line", 1.0),
        (False, True, False, False, "B1-line", 2.0),
        (False, True, True, False, "B1&B2-line", 2.5),
        (True, True, True, False, "B1&B2-line", 2.5),
        (False, False, True, False, "B2-line", 3.0),
        (True, True, True, True, "consolidation", 4.0),
        (False, False, False, True, "consolidation", 4.0),
    ],
)
def test_frame_mapping(a: bool, b: bool, c: bool, o: bool, name: str, value: float) -> None:
    assert six_class_frame(a, b, c, o) == (name, value)


def test_values_and_mean() -> None:
    assert [v for _, v in SIX_CLASSES] == [0.0, 1.0, 2.0, 2.5, 3.0, 4.0]
    # FINDINGS order: a_lines, b_lines, confluent_b_lines, consolidation, pleural_irr, effusion
    ff = np.array([
        [0.9, 0.1, 0.0, 0.0, 0.0, 0.0],  # A-line 0
        [0.9, 0.8, 0.1, 0.0, 0.9, 0.0],  # A&B 1
        [0.1, 0.7, 0.6, 0.2, 0.0, 0.9],  # B1&B2 2.5
        [0.1, 0.1, 0.1, 0.5, 0.0, 0.0],  # consolidation 4 (threshold inclusive)
    ])
    r = six_class_from_findings(ff)
    assert r.frame_classes == ["A-line", "A&B-line", "B1&B2-line", "consolidation"]
    assert r.frame_values.tolist() == [0.0, 1.0, 2.5, 4.0]
    assert r.mean == pytest.approx(7.5 / 4)
