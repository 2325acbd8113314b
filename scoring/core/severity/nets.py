"""Patient severity from lung ultrasound and clinical information (Xue et al., MedIA 69, 2021).

Three parts, trained in stages (frame scorer -> zone MIL -> MA-CLR):

* **DSA-MIL** (dual-supervised attention MIL) over the zones present in an exam:
  ``a_k = softmax_k(w^T ReLU(V f(x_k)))`` and ``b = sum_k a_k f(x_k)``; the patient class is
  predicted from ``b`` and every zone's own score from ``f(x_k)`` (the second supervision).
  Missing zones are simply absent (masked out of the softmax), so 1 to 14 zones all work.
* **Clinical encoder**: age, sex, comorbidities, symptoms, oxygen support, SpO2, respiratory rate,
  each with a missing-value mask so "unknown" is not confused with "no".
* **MA-CLR** (modality-alignment contrastive learning): both modalities are projected to one
  space (``u`` LUS, ``v`` clinical) and the class is predicted from ``[u, v]``, with
  ``L_MA = 1 - sim(u_i, v_i)``, ``L_CL = sim(u_i, v_j) + sim(u_i, v_k) + sim(v_i, v_j) + sim(v_i, v_k)``
  for patients j, k of other severities, and ``L_CC = max(sim(v_i, v_k) - sim(v_i, v_j), 0)`` where
  ``|ps_i - ps_j| < |ps_i - ps_k|``; cosine similarity throughout.

Pure torch/numpy: no Django import.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

COMORBIDITIES = ("cardiovascular", "respiratory", "digestive", "nervous", "diabetes", "hypertension",
                 "immunosuppression")
SYMPTOMS = ("fever", "cough", "dyspnea", "sore_throat", "diarrhea", "headache", "fatigue", "loss_of_smell_taste")
OXYGEN_LEVELS = {"none": 0, "nasal_cannula": 1, "mask": 2, "hfnc": 3, "niv": 4, "invasive": 5, "ecmo": 6}
#: Clinical inputs, in order; each has a value and a "known" mask entry.
CLINICAL_FEATURES: tuple[str, ...] = ("age", "male", *COMORBIDITIES, *SYMPTOMS, "oxygen_support", "spo2",
                                      "respiratory_rate")


def encode_clinical(record: Mapping[str, Any] | None) -> tuple[np.ndarray, np.ndarray]:
    """A clinical record (dict; missing keys / None = unknown) -> (values, known-mask), float32 [K].

    Scaling keeps every value near [0, 1] so a small network needs no fitted normaliser:
    age/100, SpO2 deficit (100 - SpO2)/20, respiratory rate/40, oxygen support level/6.
    """
    rec = dict(record or {})
    values = np.zeros(len(CLINICAL_FEATURES), np.float32)
    known = np.zeros(len(CLINICAL_FEATURES), np.float32)

    def put(name: str, value: float | None) -> None:
        if value is None:
            return
        i = CLINICAL_FEATURES.index(name)
        values[i] = float(value)
        known[i] = 1.0

    age = rec.get("age")
    put("age", None if age is None else float(age) / 100.0)
    sex = rec.get("sex")
    put("male", None if sex not in ("M", "F") else float(sex == "M"))
    for name in (*COMORBIDITIES, *SYMPTOMS):
        v = rec.get(name)
        put(name, None if v is None else float(bool(v)))
    oxygen = rec.get("oxygen_support")
    put("oxygen_support", None if not oxygen or oxygen not in OXYGEN_LEVELS else OXYGEN_LEVELS[oxygen] / 6.0)
    spo2 = rec.get("spo2")
    put("spo2", None if spo2 is None else (100.0 - float(spo2)) / 20.0)
    rr = rec.get("respiratory_rate")
    put("respiratory_rate", None if rr is None else float(rr) / 40.0)
    return values, known


# --- models ----------------------------------------------------------------------------------


class DSAMIL(nn.Module):
    """Dual-supervised attention MIL over zone feature vectors."""

    def __init__(self, d_in: int, hidden: int = 64, attn: int = 32, n_classes: int = 4, n_zone_classes: int = 4,
                 dropout: float = 0.2) -> None:
        super().__init__()
        self.f = nn.Sequential(nn.LayerNorm(d_in), nn.Linear(d_in, hidden), nn.ReLU(), nn.Dropout(dropout))
        self.V = nn.Linear(hidden, attn)
        self.w = nn.Linear(attn, 1, bias=False)
        self.patient_head = nn.Linear(hidden, n_classes)
        self.zone_head = nn.Linear(hidden, n_zone_classes)
        self.hidden = hidden

    def attention(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``a_k = softmax_k(w^T ReLU(V h_k))`` over present zones only. h [B,Z,H], mask [B,Z] -> [B,Z]."""
        logits = self.w(torch.relu(self.V(h))).squeeze(-1)
        logits = logits.masked_fill(~mask, float("-inf"))
        return torch.softmax(logits, dim=1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.f(x)
        a = self.attention(h, mask)
        bag = torch.einsum("bz,bzh->bh", a, h)
        return {"logits": self.patient_head(bag), "zone_logits": self.zone_head(h), "attention": a, "bag": bag}


class ClinicalEncoder(nn.Module):
    def __init__(self, k: int = len(CLINICAL_FEATURES), hidden: int = 32, dropout: float = 0.2) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2 * k, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, hidden),
                                 nn.ReLU())
        self.hidden = hidden

    def forward(self, values: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([values * known, known], dim=1))


class ClinicalMLP(nn.Module):
    """Clinical-only baseline."""

    def __init__(self, hidden: int = 32, n_classes: int = 4) -> None:
        super().__init__()
        self.enc = ClinicalEncoder(hidden=hidden)
        self.head = nn.Linear(hidden, n_classes)

    def forward(self, values: torch.Tensor, known: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"logits": self.head(self.enc(values, known))}


class Fusion(nn.Module):
    """LUS (DSA-MIL bag) + clinical encoder, projected to one space; classifier on ``[u, v]``.

    With ``contrastive=False`` it is the plain-concatenation baseline; with ``True`` the MA-CLR
    losses are added during training (the architecture is the same).
    """

    def __init__(self, d_in: int, hidden: int = 64, proj: int = 32, n_classes: int = 4) -> None:
        super().__init__()
        self.lus = DSAMIL(d_in, hidden=hidden, n_classes=n_classes)
        self.clin = ClinicalEncoder()
        self.proj_u = nn.Linear(hidden, proj)
        self.proj_v = nn.Linear(self.clin.hidden, proj)
        self.head = nn.Linear(2 * proj, n_classes)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, values: torch.Tensor, known: torch.Tensor
                ) -> dict[str, torch.Tensor]:
        out = self.lus(x, mask)
        u = self.proj_u(out["bag"])
        v = self.proj_v(self.clin(values, known))
        return {"logits": self.head(torch.cat([u, v], 1)), "zone_logits": out["zone_logits"],
                "attention": out["attention"], "u": u, "v": v}


# --- losses ----------------------------------------------------------------------------------


def dsa_mil_loss(logits: torch.Tensor, y: torch.Tensor, zone_logits: torch.Tensor, zone_y: torch.Tensor,
                 zone_mask: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """CE on the patient class + mean CE of every present, labelled zone's score (label -1 = none)."""
    loss = F.cross_entropy(logits, y, weight=weight)
    valid = zone_mask & (zone_y >= 0)
    if valid.any():
        loss = loss + F.cross_entropy(zone_logits[valid], zone_y[valid])
    return loss


def ma_loss(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``L_MA = mean_i (1 - cos(u_i, v_i))``."""
    return (1 - F.cosine_similarity(u, v, dim=1)).mean()


def cl_loss(u: torch.Tensor, v: torch.Tensor, j: torch.Tensor, k: torch.Tensor,
            rows: torch.Tensor | None = None) -> torch.Tensor:
    """``L_CL = mean_i [cos(u_i,v_j) + cos(u_i,v_k) + cos(v_i,v_j) + cos(v_i,v_k)]`` (j, k: other severities).

    ``i`` runs over ``rows`` (the patients with a contrast pair; all when None); ``j`` and ``k``
    index the whole batch. Passing the whole ``v`` as the anchors while only some rows had pairs
    crashed on cohorts of three adjacent severities (issue 17)."""
    cos = F.cosine_similarity
    ui, vi = (u, v) if rows is None else (u[rows], v[rows])
    return (cos(ui, v[j], dim=1) + cos(ui, v[k], dim=1) + cos(vi, v[j], dim=1) + cos(vi, v[k], dim=1)).mean()


def cc_loss(v: torch.Tensor, j: torch.Tensor, k: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
    """``L_CC = mean_i max(cos(v_i,v_k) - cos(v_i,v_j), 0)``, with j the severity-closer patient;
    ``i`` over ``rows`` (all when None), ``j`` and ``k`` into the whole batch."""
    cos = F.cosine_similarity
    vi = v if rows is None else v[rows]
    return torch.clamp(cos(vi, v[k], dim=1) - cos(vi, v[j], dim=1), min=0).mean()


def sample_contrast_pairs(ps: Sequence[int] | np.ndarray, rng: np.random.Generator
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each patient i: two patients j, k of other severities with |ps_i-ps_j| < |ps_i-ps_k|.

    Returns (rows, j, k) for the patients where such a pair exists in the batch (needs two other
    severities at different distances); the others take no part in L_CL / L_CC.
    """
    ps = np.asarray(ps)
    rows, js, ks = [], [], []
    for i, s in enumerate(ps):
        others = np.flatnonzero(ps != s)
        if len(others) < 2:
            continue
        dist = np.abs(ps[others] - s)
        if dist.min() == dist.max():
            continue
        near = others[dist == dist.min()]
        far = others[dist > dist.min()]
        rows.append(i)
        js.append(int(rng.choice(near)))
        ks.append(int(rng.choice(far)))
    return np.asarray(rows, int), np.asarray(js, int), np.asarray(ks, int)


# --- data ------------------------------------------------------------------------------------


@dataclass
class PatientSample:
    """One exam of one patient: zone features, zone labels (-1 = unknown), clinical record, class."""

    zone_features: dict[str, np.ndarray]
    clinical: Mapping[str, Any] | None
    label: int = -1
    zone_labels: dict[str, int] | None = None
    patient: str = ""


def batch_tensors(samples: Sequence[PatientSample], zones: Sequence[str]) -> dict[str, torch.Tensor]:
    """Stack samples into padded tensors over a fixed zone order (absent zones masked)."""
    d = next(len(f) for s in samples for f in s.zone_features.values())
    x = np.zeros((len(samples), len(zones), d), np.float32)
    mask = np.zeros((len(samples), len(zones)), bool)
    zy = np.full((len(samples), len(zones)), -1, np.int64)
    vals = np.zeros((len(samples), len(CLINICAL_FEATURES)), np.float32)
    known = np.zeros_like(vals)
    for b, s in enumerate(samples):
        for z, zone in enumerate(zones):
            if zone in s.zone_features:
                x[b, z] = s.zone_features[zone]
                mask[b, z] = True
                if s.zone_labels and s.zone_labels.get(zone, -1) >= 0:
                    zy[b, z] = s.zone_labels[zone]
        vals[b], known[b] = encode_clinical(s.clinical)
    return {"x": torch.from_numpy(x), "mask": torch.from_numpy(mask), "zone_y": torch.from_numpy(zy),
            "values": torch.from_numpy(vals), "known": torch.from_numpy(known),
            "y": torch.tensor([s.label for s in samples], dtype=torch.long)}
