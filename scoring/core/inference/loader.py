"""Any weights file the product scores with -> its scorer.

Three formats share the scorer contract (:class:`~scoring.core.inference.scorer.Scorer`'s
``features``/``_result``/``score_clips``/``version``/``meta``/``to``/``gradcam``): the default
scorer's bundles (``lusweb-bundle``: frozen EfficientNet-Lite0 + heads, the shipped default and
every site model), the networks of ``lus_train --arch mcrfnet|reg-stn`` and the cascade of
``lus_train --arch cascade`` (:mod:`.net_scorer`). A file is recognised by its ``format`` key.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from scoring.core.inference.net_scorer import (
    CASCADE_FORMAT,
    NET_FORMAT,
    CascadeScorer,
    NetScorer,
    load_cascade,
    load_net,
)
from scoring.core.inference.scorer import Scorer, load_scorer, resolve_weights, shipped_weights

#: A scorer of any of the three formats.
AnyScorer = Scorer | NetScorer | CascadeScorer

_lock = threading.Lock()
_CACHE: dict[str, NetScorer | CascadeScorer] = {}


#: (format, meta) of each weights file read, by path and modification time: what a file declares
#: is read once per process and version of the file, for load_model and shipped_models alike.
_HEADERS: dict[tuple[str, float], tuple[str, dict[str, Any] | None]] = {}


def _header(path: str | Path) -> tuple[str, dict[str, Any] | None]:
    """The ``format`` a weights file declares ('' when none) and its ``meta`` (None when none)."""
    p = Path(path)
    key = (str(p.resolve()), p.stat().st_mtime)
    with _lock:
        found = _HEADERS.get(key)
    if found is None:
        raw = torch.load(str(p), map_location="cpu", weights_only=True)
        meta = raw.get("meta") if isinstance(raw, dict) else None
        found = (str(raw.get("format") or "") if isinstance(raw, dict) else "",
                 dict(meta) if isinstance(meta, dict) else None)
        with _lock:
            _HEADERS[key] = found
    return found


def weights_format(path: str | Path) -> str:
    """The ``format`` a weights file declares ('' when it declares none)."""
    return _header(path)[0]


def load_model(name_or_path: str | Path | None = None, cached: bool = True) -> AnyScorer:
    """The scorer of a weights file, a shipped name (``reg-stn``, ``cascade``...) or a registered
    version (:func:`~scoring.core.inference.scorer.resolve_weights`); ``None``: the default."""
    path = resolve_weights(name_or_path)
    fmt = weights_format(path)
    if fmt not in (NET_FORMAT, CASCADE_FORMAT):
        return load_scorer(path, cached=cached)
    key = str(path.resolve())
    with _lock:
        if cached and key in _CACHE:
            return _CACHE[key]
        scorer: NetScorer | CascadeScorer = load_net(path) if fmt == NET_FORMAT else load_cascade(path)
        if cached:
            _CACHE[key] = scorer
        return scorer


@dataclass(frozen=True)
class ShippedModel:
    """A weights file shipped with the code: its name (``default``, ``reg-stn``...), path, format
    and metadata (version, architecture, cross-validation...)."""

    name: str
    path: Path
    format: str
    meta: dict[str, Any]


def shipped_models() -> list[ShippedModel]:
    """Every shipped weights file that declares a version, read once per file and modification
    time (a study admin's page lists them without loading a network)."""
    out = []
    for path in shipped_weights():
        fmt, meta = _header(path)
        if meta is not None and meta.get("version"):
            out.append(ShippedModel(path.stem, path, fmt, dict(meta)))
    return out
