"""One scorer per worker process, loaded lazily and kept (loading weights costs seconds), placed
on the device ``LUSWEB_DEVICE`` asks for (:mod:`scoring.core.device`)."""
from __future__ import annotations

import logging
import threading
from typing import Any

from celery.signals import worker_init
from django.conf import settings

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_scorers: dict[str, Any] = {}


def device() -> Any:
    """``LUSWEB_DEVICE`` as a ``torch.device``: cuda when asked (an error naming the variable when
    there is none) or, for ``auto``, when available; else cpu."""
    from scoring.core.device import resolve_device  # lazy: the web process never needs torch unless it scores

    return resolve_device(str(getattr(settings, "DEVICE", "auto")))


def half_precision() -> bool:
    """``LUSWEB_HALF_PRECISION``: the feature passes in float16 on CUDA (off by default; the CPU
    always runs float32)."""
    return bool(getattr(settings, "HALF_PRECISION", False))


def forward_batch(dev: Any) -> int:
    """Images per backbone forward pass: ``LUSWEB_DEVICE_BATCH``, else 16 on the CPU, 64 on CUDA."""
    configured = int(getattr(settings, "DEVICE_BATCH", 0) or 0)
    if configured > 0:
        return configured
    return 64 if dev.type == "cuda" else 16


def check_device() -> Any:
    """The worker's start-up check: resolve the device (``cuda`` without CUDA raises
    :class:`~scoring.core.device.DeviceUnavailable`, naming ``LUSWEB_DEVICE``) and log it."""
    from scoring.core.device import describe, half_dtype  # lazy: torch

    dev = device()
    precision = half_dtype(dev, half_precision()) or "float32"
    logger.info("scoring device: %s (LUSWEB_DEVICE=%s, %s, %d images per pass)",
                describe(dev), getattr(settings, "DEVICE", "auto"), str(precision).removeprefix("torch."),
                forward_batch(dev))
    return dev


@worker_init.connect
def worker_device_check(**_: Any) -> None:
    """At worker start (after the task modules are imported, before it consumes): log the device,
    or stop the worker when ``LUSWEB_DEVICE`` asks for one that is not there. ``SystemExit``
    because Celery logs and swallows a signal handler's ordinary exceptions; a GPU worker must
    never fall back to the CPU silently."""
    from scoring.core.device import DeviceUnavailable  # lazy: torch

    try:
        check_device()
    except (DeviceUnavailable, ValueError) as exc:
        logger.critical("worker cannot start: %s", exc)
        raise SystemExit(f"lusweb worker: {exc}") from exc


def get_scorer(weights: str) -> Any:
    """The scorer for ``weights`` ('' = default), loaded once per process and placed on the device."""
    with _lock:
        scorer = _scorers.get(weights)
        if scorer is None:
            from scoring.engine import load_model  # lazy: the scorer imports torch

            dev = device()
            scorer = load_model(weights or None)
            scorer.to(dev, half=half_precision(), batch=forward_batch(dev))
            _scorers[weights] = scorer
        return scorer
