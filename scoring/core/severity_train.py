"""Training, cross-validation and the saved bundle of the patient-severity models.

Ablation kinds (Xue et al. 2021, Table 4):
``mean_zone`` (multinomial logistic regression on the mean predicted zone score),
``attention_mil`` (attention MIL, patient supervision only), ``dsa_mil`` (+ zone supervision),
``clinical_mlp`` (clinical information only), ``concat`` (DSA-MIL bag + clinical, plain
concatenation), ``ma_clr`` (the same fusion trained with the modality-alignment contrastive
losses, staged: DSA-MIL first, then the fusion initialised from it).
"""
from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from scoring.core.severity import (
    DSAMIL,
    SEVERE_FROM,
    SEVERITY_CLASSES,
    ClinicalMLP,
    Fusion,
    PatientSample,
    batch_tensors,
    cc_loss,
    cl_loss,
    dsa_mil_loss,
    ma_loss,
    sample_contrast_pairs,
)

KINDS: tuple[str, ...] = ("mean_zone", "attention_mil", "dsa_mil", "clinical_mlp", "concat", "ma_clr")
KIND_TITLES = {
    "mean_zone": "Mean zone score (LR)", "attention_mil": "Attention MIL", "dsa_mil": "DSA-MIL",
    "clinical_mlp": "Clinical-only MLP", "concat": "LUS + clinical, plain concatenation", "ma_clr": "MA-CLR",
}


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


def _class_weights(y: np.ndarray, n: int = len(SEVERITY_CLASSES)) -> torch.Tensor:
    counts = np.bincount(y, minlength=n).astype(np.float32)
    w = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / n, 0.0)
    return torch.from_numpy(w.astype(np.float32))


def _mean_zone_score(s: PatientSample) -> float:
    scores = [float(v[:4] @ np.arange(4)) for v in s.zone_features.values()]
    return float(np.mean(scores)) if scores else 0.0


def train(kind: str, samples: Sequence[PatientSample], zones: Sequence[str], cfg: TrainConfig | None = None
          ) -> Trained:
    """Fit one model of ``kind`` on labelled samples (their zone features start with 4 class probs)."""
    cfg = cfg or TrainConfig()
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    zones = tuple(zones)
    d_in = len(next(iter(samples[0].zone_features.values())))
    y = np.asarray([s.label for s in samples])
    if kind == "mean_zone":
        # Multinomial logistic regression on one number: slope and intercept per class.
        x = torch.tensor([_mean_zone_score(s) for s in samples], dtype=torch.float32)
        coef = torch.zeros(len(SEVERITY_CLASSES), 2, requires_grad=True)
        opt_lr = torch.optim.LBFGS([coef], max_iter=200)
        target = torch.from_numpy(y)
        w = _class_weights(y)

        def closure() -> torch.Tensor:
            opt_lr.zero_grad()
            logits = x[:, None] * coef[:, 0] + coef[:, 1]
            loss = F.cross_entropy(logits, target, weight=w) + 1e-3 * (coef[:, 0] ** 2).sum()
            loss.backward()
            return loss

        opt_lr.step(closure)
        return Trained(kind, zones, d_in, lr_coef=coef.detach().numpy().astype(np.float64), config=cfg)

    batch = batch_tensors(samples, zones)
    weights = _class_weights(y)
    if kind == "clinical_mlp":
        model: nn.Module = ClinicalMLP()
    elif kind in ("attention_mil", "dsa_mil"):
        model = DSAMIL(d_in, hidden=cfg.hidden, zone_supervision=kind == "dsa_mil")
    else:
        model = Fusion(d_in, hidden=cfg.hidden, proj=cfg.proj)
        if kind == "ma_clr":
            # Staged training: the LUS branch starts from a trained DSA-MIL.
            stage = train("dsa_mil", samples, zones, cfg)
            assert isinstance(stage.model, DSAMIL)
            model.lus.load_state_dict(stage.model.state_dict())
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    for _ in range(cfg.epochs):
        model.train()
        opt.zero_grad()
        loss = _loss(kind, model, batch, weights, cfg, rng)
        loss.backward()
        opt.step()
    model.eval()
    return Trained(kind, zones, d_in, model=model, config=cfg)


def _forward(kind: str, model: nn.Module, b: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    if kind == "clinical_mlp":
        return model(b["values"], b["known"])
    if kind in ("attention_mil", "dsa_mil"):
        return model(b["x"], b["mask"])
    return model(b["x"], b["mask"], b["values"], b["known"])


def _loss(kind: str, model: nn.Module, b: dict[str, torch.Tensor], weights: torch.Tensor, cfg: TrainConfig,
          rng: np.random.Generator) -> torch.Tensor:
    out = _forward(kind, model, b)
    if kind in ("dsa_mil", "concat", "ma_clr"):
        loss = dsa_mil_loss(out["logits"], b["y"], out["zone_logits"], b["zone_y"], b["mask"], weight=weights)
    else:
        loss = F.cross_entropy(out["logits"], b["y"], weight=weights)
    if kind == "ma_clr":
        u, v = out["u"], out["v"]
        loss = loss + cfg.lambda_ma * ma_loss(u, v)
        rows, j, k = sample_contrast_pairs(b["y"].numpy(), rng)
        if len(rows):
            r, jt, kt = (torch.from_numpy(a) for a in (rows, j, k))
            loss = loss + cfg.lambda_cl * cl_loss(u[r], v, jt, kt) + cfg.lambda_cc * cc_loss(v[r], jt, kt)
    return loss


@torch.inference_mode()
def predict(trained: Trained, samples: Sequence[PatientSample]) -> dict[str, np.ndarray]:
    """Class probabilities [N,4] and zone attention [N,Z] (NaN for absent zones / no attention)."""
    zones = trained.zones
    if trained.kind == "mean_zone":
        assert trained.lr_coef is not None
        x = np.asarray([_mean_zone_score(s) for s in samples])
        logits = x[:, None] * trained.lr_coef[:, 0] + trained.lr_coef[:, 1]
        probs = np.exp(logits - logits.max(1, keepdims=True))
        probs /= probs.sum(1, keepdims=True)
        return {"probs": probs, "attention": np.full((len(samples), len(zones)), np.nan)}
    assert trained.model is not None
    b = batch_tensors(samples, zones)
    out = _forward(trained.kind, trained.model, b)
    probs = torch.softmax(out["logits"], 1).numpy()
    att = out.get("attention")
    attention = np.full((len(samples), len(zones)), np.nan) if att is None else att.numpy()
    if att is not None:
        attention[~b["mask"].numpy()] = np.nan
    return {"probs": probs, "attention": attention}


def metrics(y: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    """4-class accuracy, macro-F1, severe/non-severe accuracy, n."""
    from sklearn.metrics import f1_score

    pred = probs.argmax(1)
    severe_true = y >= SEVERE_FROM
    severe_pred = probs[:, SEVERE_FROM:].sum(1) >= 0.5
    return {
        "accuracy": float((pred == y).mean()),
        "macro_f1": float(f1_score(y, pred, average="macro", labels=list(range(4)), zero_division=0)),
        "severe_accuracy": float((severe_true == severe_pred).mean()),
        "n": float(len(y)),
    }


def cross_validate(samples: Sequence[PatientSample], zones: Sequence[str], kinds: Sequence[str] = KINDS,
                   folds: int = 5, seeds: Sequence[int] = (0,), cfg: TrainConfig | None = None
                   ) -> dict[str, dict[str, float]]:
    """Patient-grouped stratified k-fold CV (one sample per patient), repeated over seeds.

    Returns per kind the mean and sd over seeds of each metric (out-of-fold predictions pooled
    per seed).
    """
    from sklearn.model_selection import StratifiedGroupKFold

    y = np.asarray([s.label for s in samples])
    groups = np.asarray([s.patient or str(i) for i, s in enumerate(samples)])
    table: dict[str, dict[str, list[float]]] = {k: {} for k in kinds}
    for seed in seeds:
        n_splits = min(folds, int(np.bincount(y).max()), len(set(groups)))
        splitter = StratifiedGroupKFold(n_splits=max(n_splits, 2), shuffle=True, random_state=seed)
        oof = {k: np.zeros((len(samples), len(SEVERITY_CLASSES))) for k in kinds}
        for tr, te in splitter.split(np.zeros(len(y)), y, groups):
            train_set = [samples[i] for i in tr]
            test_set = [samples[i] for i in te]
            for kind in kinds:
                oof[kind][te] = predict(train(kind, train_set, zones, _with_seed(cfg, seed)), test_set)["probs"]
        for kind in kinds:
            for name, value in metrics(y, oof[kind]).items():
                table[kind].setdefault(name, []).append(value)
    return {k: {f"{m}_mean": float(np.mean(v)) for m, v in d.items()} | {f"{m}_sd": float(np.std(v))
                                                                        for m, v in d.items()}
            for k, d in table.items()}


def _with_seed(cfg: TrainConfig | None, seed: int) -> TrainConfig:
    c = copy.deepcopy(cfg or TrainConfig())
    c.seed = seed
    return c


def ablation_markdown(table: dict[str, dict[str, float]], title: str) -> str:
    lines = [f"**{title}**", "", "| Model | 4-class accuracy | Severe/non-severe accuracy | Macro-F1 |",
             "| --- | --- | --- | --- |"]
    for kind, m in table.items():
        lines.append(f"| {KIND_TITLES.get(kind, kind)} | {m['accuracy_mean']:.3f} ± {m['accuracy_sd']:.3f} | "
                     f"{m['severe_accuracy_mean']:.3f} ± {m['severe_accuracy_sd']:.3f} | "
                     f"{m['macro_f1_mean']:.3f} ± {m['macro_f1_sd']:.3f} |")
    return "\n".join(lines)


# --- bundle ----------------------------------------------------------------------------------


def save_bundle(trained: Trained, path: str | Path, meta: dict[str, Any]) -> str:
    """Save the model with its metadata; returns the version string (content hash)."""
    assert trained.model is not None
    state = {k: v.detach().cpu() for k, v in trained.model.state_dict().items()}
    blob = json.dumps(meta, sort_keys=True, default=str)
    digest = hashlib.sha256(blob.encode() + b"".join(t.numpy().tobytes() for t in state.values())).hexdigest()
    version = f"severity-{trained.kind}-{digest[:10]}"
    torch.save({"kind": trained.kind, "zones": list(trained.zones), "d_in": trained.d_in,
                "hidden": trained.config.hidden, "proj": trained.config.proj, "state": state,
                "meta": json.dumps({**meta, "version": version})}, str(path))
    return version


@dataclass
class SeverityModel:
    """A loaded severity model: ``predict_exam`` gives probabilities and zone attention."""

    trained: Trained
    meta: dict[str, Any]

    @property
    def version(self) -> str:
        return str(self.meta.get("version", "unversioned"))

    def predict_exam(self, zone_features: dict[str, np.ndarray], clinical: dict[str, Any] | None
                     ) -> dict[str, Any]:
        sample = PatientSample(zone_features={z: f for z, f in zone_features.items() if z in self.trained.zones},
                               clinical=clinical)
        if not sample.zone_features:
            raise ValueError("no zone of this exam is known to the severity model")
        out = predict(self.trained, [sample])
        probs = out["probs"][0]
        attention = {z: float(a) for z, a in zip(self.trained.zones, out["attention"][0], strict=True)
                     if not np.isnan(a)}
        return {"label": SEVERITY_CLASSES[int(probs.argmax())], "probs": [float(p) for p in probs],
                "severe_probability": float(probs[SEVERE_FROM:].sum()), "zone_attention": attention}


def load_severity(path: str | Path) -> SeverityModel:
    st = torch.load(str(path), map_location="cpu", weights_only=True)
    kind = st["kind"]
    d_in = int(st["d_in"])
    model: nn.Module
    if kind == "clinical_mlp":
        model = ClinicalMLP()
    elif kind in ("attention_mil", "dsa_mil"):
        model = DSAMIL(d_in, hidden=int(st["hidden"]))
    else:
        model = Fusion(d_in, hidden=int(st["hidden"]), proj=int(st["proj"]))
    model.load_state_dict(st["state"])
    model.eval()
    trained = Trained(kind, tuple(st["zones"]), d_in, model=model)
    return SeverityModel(trained, json.loads(st["meta"]))
