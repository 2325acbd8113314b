"""The patient-severity model as served: the fitted model, its prediction and its weights file.

Training (the ablation kinds, cross-validation) is :mod:`scoring.core.severity.training`; the
networks and losses are :mod:`scoring.core.severity.nets`.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from scoring.core.severity.calibration import apply_temperature
from scoring.core.severity.nets import (
    DSAMIL,
    ClinicalMLP,
    Fusion,
    PatientSample,
    batch_tensors,
)
from scoring.core.severity.risk import SEVERE_FROM, SEVERITY_CLASSES


@dataclass
class TrainConfig:
    epochs: int = 150
    lr: float = 3e-3
    weight_decay: float = 1e-3
    hidden: int = 64
    proj: int = 32
    lambda_ma: float = 0.5
    lambda_cl: float = 0.25
    lambda_cc: float = 0.25
    seed: int = 0


@dataclass
class Trained:
    kind: str
    zones: tuple[str, ...]
    d_in: int
    model: nn.Module | None = None
    lr_coef: np.ndarray | None = None  # mean_zone: [C, 2] (slope, intercept)
    config: TrainConfig = field(default_factory=TrainConfig)


def mean_zone_score(s: PatientSample) -> float:
    """Mean over the zones of the expected clip score (the first 4 values of a zone feature)."""
    scores = [float(v[:4] @ np.arange(4)) for v in s.zone_features.values()]
    return float(np.mean(scores)) if scores else 0.0


def build_model(kind: str, d_in: int, hidden: int, proj: int) -> nn.Module:
    """The untrained network of ``kind`` (``mean_zone`` has none)."""
    if kind == "clinical_mlp":
        return ClinicalMLP()
    if kind in ("attention_mil", "dsa_mil"):
        return DSAMIL(d_in, hidden=hidden)
    return Fusion(d_in, hidden=hidden, proj=proj)


def forward(kind: str, model: nn.Module, b: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Run a severity network of ``kind`` on a batch of :func:`batch_tensors`."""
    if kind == "clinical_mlp":
        return model(b["values"], b["known"])
    if kind in ("attention_mil", "dsa_mil"):
        return model(b["x"], b["mask"])
    return model(b["x"], b["mask"], b["values"], b["known"])


@torch.inference_mode()
def predict(trained: Trained, samples: Sequence[PatientSample]) -> dict[str, np.ndarray]:
    """Class probabilities [N,4] and zone attention [N,Z] (NaN for absent zones / no attention)."""
    zones = trained.zones
    if trained.kind == "mean_zone":
        assert trained.lr_coef is not None
        x = np.asarray([mean_zone_score(s) for s in samples])
        logits = x[:, None] * trained.lr_coef[:, 0] + trained.lr_coef[:, 1]
        probs = np.exp(logits - logits.max(1, keepdims=True))
        probs /= probs.sum(1, keepdims=True)
        return {"probs": probs, "attention": np.full((len(samples), len(zones)), np.nan)}
    assert trained.model is not None
    b = batch_tensors(samples, zones)
    dev = next(trained.model.parameters()).device  # the batch follows the model
    out = forward(trained.kind, trained.model, {k: v.to(dev) for k, v in b.items()})
    probs = torch.softmax(out["logits"], 1).cpu().numpy()
    att = out.get("attention")
    attention = np.full((len(samples), len(zones)), np.nan) if att is None else att.cpu().numpy()
    if att is not None:
        attention[~b["mask"].numpy()] = np.nan
    return {"probs": probs, "attention": attention}


def save_bundle(trained: Trained, path: str | Path, meta: dict[str, Any],
                calibration: Mapping[str, Any] | None = None) -> str:
    """Save the model with its metadata and, when given, its calibrator (``calibration``: the
    :class:`~scoring.core.severity.calibration.Calibration` figures, with its ``temperature``);
    returns the version string (content hash over the metadata, the calibration and the weights)."""
    assert trained.model is not None
    state = {k: v.detach().cpu() for k, v in trained.model.state_dict().items()}
    full = {**meta, "calibration": dict(calibration) if calibration is not None else None}
    blob = json.dumps(full, sort_keys=True, default=str)
    digest = hashlib.sha256(blob.encode() + b"".join(t.numpy().tobytes() for t in state.values())).hexdigest()
    version = f"severity-{trained.kind}-{digest[:10]}"
    bundle: dict[str, Any] = {"kind": trained.kind, "zones": list(trained.zones), "d_in": trained.d_in,
                              "hidden": trained.config.hidden, "proj": trained.config.proj, "state": state,
                              "meta": json.dumps({**full, "version": version}, default=str)}
    if calibration is not None:
        bundle["calibrator"] = {"method": str(calibration["method"]), "temperature": float(calibration["temperature"])}
    torch.save(bundle, str(path))
    return version


@dataclass
class SeverityModel:
    """A loaded severity model: ``predict_exam`` gives the course-class probabilities (calibrated
    when the bundle carries a calibrator) and the zone attention."""

    trained: Trained
    meta: dict[str, Any]
    temperature: float | None = None  # None: the bundle has no calibrator

    @property
    def version(self) -> str:
        return str(self.meta.get("version", "unversioned"))

    @property
    def calibrated(self) -> bool:
        return self.temperature is not None

    def to(self, device: torch.device | str) -> SeverityModel:
        """Place the network (none for ``mean_zone``) on ``device``; exams' batches follow it."""
        if self.trained.model is not None:
            self.trained.model.to(torch.device(device))
        return self

    def predict_exam(self, zone_features: dict[str, np.ndarray], clinical: dict[str, Any] | None
                     ) -> dict[str, Any]:
        sample = PatientSample(zone_features={z: f for z, f in zone_features.items() if z in self.trained.zones},
                               clinical=clinical)
        if not sample.zone_features:
            raise ValueError("no zone of this exam is known to the severity model")
        out = predict(self.trained, [sample])
        raw = out["probs"][0]
        probs = raw if self.temperature is None else apply_temperature(raw[None], self.temperature)[0]
        attention = {z: float(a) for z, a in zip(self.trained.zones, out["attention"][0], strict=True)
                     if not np.isnan(a)}
        return {"label": SEVERITY_CLASSES[int(probs.argmax())], "probs": [float(p) for p in probs],
                "raw_probs": [float(p) for p in raw], "severe_probability": float(probs[SEVERE_FROM:].sum()),
                "zone_attention": attention}


def load_severity(path: str | Path, device: torch.device | str = "cpu") -> SeverityModel:
    """Read a severity weights file (``torch.load(weights_only=True)``); refuses a calibrator that
    differs from the calibration its metadata (and so its version) records."""
    st = torch.load(str(path), map_location="cpu", weights_only=True)
    kind = st["kind"]
    d_in = int(st["d_in"])
    model = build_model(kind, d_in, int(st["hidden"]), int(st["proj"]))
    model.load_state_dict(st["state"])
    model.eval()
    trained = Trained(kind, tuple(st["zones"]), d_in, model=model)
    meta = json.loads(st["meta"])
    calibrator = st.get("calibrator")
    recorded = meta.get("calibration")
    if (calibrator is None) != (recorded is None) or (
            calibrator is not None and float(calibrator["temperature"]) != float(recorded["temperature"])):
        raise ValueError(f"{path}: the calibrator does not match the calibration in its metadata")
    return SeverityModel(trained, meta, None if calibrator is None else float(calibrator["temperature"])).to(device)
