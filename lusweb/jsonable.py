"""The one JSON helper: values for a ``JSONField`` from what readers and models return.

Clip metadata (DICOM headers, PyAV streams) and scorer outputs (numpy arrays and scalars) carry
values the JSON encoder refuses. :func:`jsonable` turns them into plain JSON values once, the
same way for every caller.
"""
from __future__ import annotations

from typing import Any

import numpy as np


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON data.

    Mappings become dicts with string keys and lists and tuples become lists, both converted
    recursively (so e.g. DICOM ultrasound regions stay objects); numpy integers, floats and
    arrays become Python ints, floats and lists; None, str, int, float and bool are kept; anything
    else (a pydicom person name, a UID, a fraction) becomes its ``str``.
    """
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)
