"""Training and cross-validation of the patient-severity models (served by :mod:`scoring.core.severity.bundle`).

Ablation kinds (Xue et al. 2021, Table 4):
``mean_zone`` (multinomial logistic regression on the mean predicted zone score),
``attention_mil`` (attention MIL, patient supervision only), ``dsa_mil`` (+ zone supervision),
``clinical_mlp`` (clinical information only), ``concat`` (DSA-MIL bag + clinical, plain
concatenation), ``ma_clr`` (the same fusion trained with the modality-alignment contrastive
losses, staged: DSA-MIL first, then the fusion initialised from it).
"""
from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedGroupKFold
from torch import nn

from scoring.core.severity.bundle import TrainConfig, Trained, build_model, forward, mean_zone_score, predict
from scoring.core.severity.nets import (
    DSAMIL,
    Fusion,
    PatientSample,
    batch_tensors,
    cc_loss,
    cl_loss,
    dsa_mil_loss,
    ma_loss,
    sample_contrast_pairs,
)
from scoring.core.severity.risk import SEVERE_FROM, SEVERITY_CLASSES
from scoring.core.training.fitting import class_weights

KINDS: tuple[str, ...] = ("mean_zone", "attention_mil", "dsa_mil", "clinical_mlp", "concat", "ma_clr")
KIND_TITLES = {
    "mean_zone": "Mean zone score (LR)", "attention_mil": "Attention MIL", "dsa_mil": "DSA-MIL",
    "clinical_mlp": "Clinical-only MLP", "concat": "LUS + clinical, plain concatenation", "ma_clr": "MA-CLR",
}


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
        x = torch.tensor([mean_zone_score(s) for s in samples], dtype=torch.float32)
        coef = torch.zeros(len(SEVERITY_CLASSES), 2, requires_grad=True)
        opt_lr = torch.optim.LBFGS([coef], max_iter=200)
        target = torch.from_numpy(y)
        w = torch.from_numpy(class_weights(y, len(SEVERITY_CLASSES)).astype(np.float32))

        def closure() -> torch.Tensor:
            opt_lr.zero_grad()
            logits = x[:, None] * coef[:, 0] + coef[:, 1]
            loss = F.cross_entropy(logits, target, weight=w) + 1e-3 * (coef[:, 0] ** 2).sum()
            loss.backward()
            return loss

        opt_lr.step(closure)
        return Trained(kind, zones, d_in, lr_coef=coef.detach().numpy().astype(np.float64), config=cfg)

    batch = batch_tensors(samples, zones)
    weights = torch.from_numpy(class_weights(y, len(SEVERITY_CLASSES)).astype(np.float32))
    model = build_model(kind, d_in, cfg.hidden, cfg.proj)
    if kind == "ma_clr":
        # Staged training: the LUS branch starts from a trained DSA-MIL.
        stage = train("dsa_mil", samples, zones, cfg)
        assert isinstance(stage.model, DSAMIL) and isinstance(model, Fusion)
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


def _loss(kind: str, model: nn.Module, b: dict[str, torch.Tensor], weights: torch.Tensor, cfg: TrainConfig,
          rng: np.random.Generator) -> torch.Tensor:
    out = forward(kind, model, b)
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
            loss = loss + cfg.lambda_cl * cl_loss(u, v, jt, kt, rows=r) + cfg.lambda_cc * cc_loss(v, jt, kt, rows=r)
    return loss


def metrics(y: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    """4-class accuracy, macro-F1, severe/non-severe accuracy, n."""
    pred = probs.argmax(1)
    severe_true = y >= SEVERE_FROM
    severe_pred = probs[:, SEVERE_FROM:].sum(1) >= 0.5
    return {
        "accuracy": float((pred == y).mean()),
        "macro_f1": float(f1_score(y, pred, average="macro", labels=list(range(4)), zero_division=0)),
        "severe_accuracy": float((severe_true == severe_pred).mean()),
        "n": float(len(y)),
    }


def oof_predictions(samples: Sequence[PatientSample], zones: Sequence[str], kinds: Sequence[str] = KINDS,
                    folds: int = 5, seeds: Sequence[int] = (0,), cfg: TrainConfig | None = None
                    ) -> dict[str, list[np.ndarray]]:
    """Out-of-fold class probabilities per kind: one [N, 4] array per fold seed, each patient
    predicted by the model of the fold that left them out (patient-grouped stratified k-fold)."""
    y = np.asarray([s.label for s in samples])
    groups = np.asarray([s.patient or str(i) for i, s in enumerate(samples)])
    out: dict[str, list[np.ndarray]] = {k: [] for k in kinds}
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
            out[kind].append(oof[kind])
    return out


def cv_table(y: np.ndarray, oof: dict[str, list[np.ndarray]]) -> dict[str, dict[str, float]]:
    """Per kind the mean and sd over fold seeds of each :func:`metrics` (of :func:`oof_predictions`)."""
    table: dict[str, dict[str, list[float]]] = {k: {} for k in oof}
    for kind, per_seed in oof.items():
        for probs in per_seed:
            for name, value in metrics(np.asarray(y), probs).items():
                table[kind].setdefault(name, []).append(value)
    return {k: {f"{m}_mean": float(np.mean(v)) for m, v in d.items()} | {f"{m}_sd": float(np.std(v))
                                                                        for m, v in d.items()}
            for k, d in table.items()}


def cross_validate(samples: Sequence[PatientSample], zones: Sequence[str], kinds: Sequence[str] = KINDS,
                   folds: int = 5, seeds: Sequence[int] = (0,), cfg: TrainConfig | None = None
                   ) -> dict[str, dict[str, float]]:
    """Patient-grouped stratified k-fold CV (one sample per patient), repeated over seeds.

    Returns per kind the mean and sd over seeds of each metric (out-of-fold predictions pooled
    per seed).
    """
    oof = oof_predictions(samples, zones, kinds=kinds, folds=folds, seeds=seeds, cfg=cfg)
    return cv_table(np.asarray([s.label for s in samples]), oof)


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


