from __future__ import annotations

import numpy as np
import pytest

from lusweb.jsonable import jsonable
from scoring.core.inference.six_class import (
    SIX_CLASSES,
    six_class_dominant,
    six_class_frame,
    six_class_from_findings,
    six_class_pooled,
    six_class_stored,
)


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


def test_pooled_mean_weighs_each_clip_by_its_frames() -> None:
    # Clip A: 4 frames of mean 0.75, clip B: 2 frames of mean 4 -> (3 + 8) / 6, not (0.75 + 4) / 2.
    assert six_class_pooled([(0.75, 4), (4.0, 2)]) == pytest.approx(11 / 6)
    frames = np.array([0.0, 0.0, 1.0, 2.0, 4.0, 4.0])
    assert six_class_pooled([(frames[:4].mean(), 4), (frames[4:].mean(), 2)]) == pytest.approx(frames.mean())
    assert six_class_pooled([]) is None and six_class_pooled([(2.0, 0)]) is None


def test_dominant_class_and_its_tie_break() -> None:
    assert six_class_dominant(["A-line", "B1-line", "A-line"]) == "A-line"
    assert six_class_dominant(["A-line", "consolidation", "B2-line", "A-line", "consolidation"]) == "consolidation"
    assert six_class_dominant(["B1-line", "A&B-line"]) == "B1-line"  # a tie: the more severe
    assert six_class_dominant([]) is None and six_class_dominant(["not a class"]) is None


def test_stored_results_read_back_as_dict_and_as_the_repr_older_scores_kept() -> None:
    ff = np.array([[0.9, 0.1, 0.0, 0.0, 0.0, 0.0], [0.1, 0.7, 0.6, 0.2, 0.0, 0.9], [0.1, 0.1, 0.1, 0.5, 0.0, 0.0]])
    result = six_class_from_findings(ff)
    stored = six_class_stored(result.to_dict())
    assert stored is not None and stored.mean == pytest.approx(6.5 / 3, abs=1e-5)
    assert stored.frame_classes == ("A-line", "B1&B2-line", "consolidation")
    # What jsonable() made of the dataclass before the pipeline stored the dict: its repr.
    legacy = jsonable(result)
    assert isinstance(legacy, str) and legacy.startswith("SixClassResult(")
    old = six_class_stored(legacy)
    assert old is not None and old.mean == result.mean and old.frame_classes == stored.frame_classes
    long = six_class_from_findings(np.tile(ff, (700, 1)))  # 2100 frames: numpy shortens the values' repr
    old_long = six_class_stored(jsonable(long))
    assert old_long is not None and old_long.mean == long.mean and len(old_long.frame_classes) == 2100
    junk: tuple[object, ...] = (None, "", "something else", {"mean": "x"}, {"mean": True}, [], "SixClassResult(mean=)")
    for value in junk:
        assert six_class_stored(value) is None
