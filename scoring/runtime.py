"""One scorer per worker process, loaded lazily and kept (loading weights costs seconds)."""
from __future__ import annotations

import threading
from typing import Any

from django.conf import settings

_lock = threading.Lock()
_scorers: dict[str, Any] = {}


def device() -> str:
    """``LUSWEB_DEVICE``: cuda when asked or (auto) when available, else cpu."""
    wanted = getattr(settings, "DEVICE", "auto")
    if wanted == "cpu":
        return "cpu"
    import torch  # lazy: the web process never needs torch unless it scores

    if wanted == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("LUSWEB_DEVICE=cuda but no CUDA device is available to this worker")
    return "cuda" if torch.cuda.is_available() else "cpu"


def get_scorer(weights: str) -> Any:
    """The scorer for ``weights`` ('' = default), loaded once per process."""
    with _lock:
        scorer = _scorers.get(weights)
        if scorer is None:
            from scoring.engine import load_scorer  # lazy: the scorer imports torch

            scorer = load_scorer(weights or None)
            to = getattr(scorer, "to", None)
            if callable(to):
                to(device())
            _scorers[weights] = scorer
        return scorer
