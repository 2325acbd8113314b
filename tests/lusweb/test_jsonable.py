"""lusweb.jsonable: the one conversion of clip metadata and scorer outputs to JSON values."""
from __future__ import annotations

import fractions
import json

import numpy as np

from lusweb.jsonable import jsonable


def test_numpy_values_become_python_numbers() -> None:
    out = jsonable({"n": np.int64(3), "x": np.float32(0.5), "a": np.arange(3), "m": np.eye(2, dtype=np.uint8)})
    assert out == {"n": 3, "x": 0.5, "a": [0, 1, 2], "m": [[1, 0], [0, 1]]}
    assert type(out["n"]) is int and type(out["x"]) is float
    json.dumps(out)


def test_nested_containers_are_converted_recursively() -> None:
    meta = {"regions": [{"x0": np.int32(1), "y0": 2}], "spacing": (0.1, 0.2), 7: None, "ok": True}
    assert jsonable(meta) == {"regions": [{"x0": 1, "y0": 2}], "spacing": [0.1, 0.2], "7": None, "ok": True}


def test_anything_else_is_its_text() -> None:
    assert jsonable({"ratio": fractions.Fraction(1, 3), "name": "Doe^John"}) == {"ratio": "1/3", "name": "Doe^John"}
    assert jsonable(np.float64(2.5)) == 2.5 and jsonable(None) is None
