"""Where the scoring core runs: ``LUSWEB_DEVICE`` (``cpu`` | ``cuda`` | ``auto``) -> a torch device.

Pure (no Django): the worker, training and the command-line tools all resolve the device here,
so asking for ``cuda`` on a machine without CUDA fails loudly instead of running on the CPU.
The lowest layer of the scoring core: every other layer may import it.
"""
from __future__ import annotations

import os

import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda")

#: Largest change (absolute) of a frame / a clip probability that half precision may cause. Measured
#: by ``benchmarks/bench_device.py`` on 4 real COVID-BLUES clips x 24 frames with float16 autocast
#: (run on the CPU, which rounds as CUDA's float16 does): frames 0.028, clips 0.002, no clip score
#: changed. bfloat16 (the CPU's fast reduced precision) moved frame probabilities by 0.38 and clip
#: probabilities by 0.016, so the CPU never runs in reduced precision.
HALF_PRECISION_FRAME_TOLERANCE = 0.05
HALF_PRECISION_CLIP_TOLERANCE = 0.01


class DeviceUnavailable(RuntimeError):
    """The device asked for is not there (``LUSWEB_DEVICE=cuda`` without CUDA)."""


def resolve_device(wanted: str | None = "auto", variable: str = "LUSWEB_DEVICE") -> torch.device:
    """``cpu`` -> cpu; ``cuda`` -> the first CUDA device, or :class:`DeviceUnavailable` naming
    ``variable`` when there is none; ``auto`` (or empty) -> cuda when available, else cpu."""
    choice = (wanted or "auto").strip().lower()
    if choice not in DEVICE_CHOICES:
        raise ValueError(f"{variable}={wanted!r}: expected one of {', '.join(DEVICE_CHOICES)}")
    if choice == "cpu":
        return torch.device("cpu")
    available = torch.cuda.is_available()
    if choice == "cuda" and not available:
        raise DeviceUnavailable(
            f"{variable}=cuda but torch sees no CUDA device (torch {torch.__version__}, built for CUDA "
            f"{torch.version.cuda or 'none'}): install a CUDA build of torch and expose the GPU to this "
            f"process, or set {variable}=cpu or {variable}=auto")
    return torch.device("cuda", 0) if available else torch.device("cpu")


def env_device() -> torch.device:
    """The device of the ``LUSWEB_DEVICE`` environment variable (for the command-line training,
    which runs without Django settings)."""
    return resolve_device(os.environ.get("LUSWEB_DEVICE", "auto"))


def half_dtype(device: torch.device, enabled: bool) -> torch.dtype | None:
    """The reduced precision the CNN's feature passes run in on ``device`` (autocast), or None for
    float32: float16 on CUDA when ``enabled``; never on the CPU (bfloat16, the only fast one there,
    moves the scores beyond the tolerances above)."""
    return torch.float16 if enabled and device.type == "cuda" else None


def describe(device: torch.device) -> str:
    """One line for the worker's start-up log: the device and, for CUDA, the card."""
    if device.type == "cuda":
        idx = device.index or 0
        props = torch.cuda.get_device_properties(idx)
        return f"cuda:{idx} ({props.name}, {props.total_memory / 2**30:.0f} GiB)"
    return f"cpu ({torch.get_num_threads()} torch threads)"


def module_devices(module: torch.nn.Module) -> set[torch.device]:
    """The devices holding a module's parameters and buffers (one, once placed)."""
    return {t.device for t in list(module.parameters()) + list(module.buffers())}
