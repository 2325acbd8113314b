"""A synthetic cohort whose true severity is known, for tests and the MA-CLR sanity check.

Each patient's class drives two *independent* noisy latents: lung burden (seen through the zone
features) and systemic state (seen through the clinical record). Neither modality alone reveals
the class reliably, both together do better: the setting MA-CLR is built for. Zone features have
the layout of the real ones: 4 clip class probabilities, 6 finding probabilities, then extra
embedding dimensions (here: noise correlated with the zone score).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from scoring.core.severity.nets import COMORBIDITIES, SYMPTOMS, PatientSample

ZONES_12: tuple[str, ...] = tuple(f"{s}{i}" for s in "RL" for i in range(1, 7))


def synthetic_cohort(n_patients: int = 200, zones: Sequence[str] = ZONES_12, seed: int = 0, d_extra: int = 8,
                     noise: float = 0.9, missing_zone_rate: float = 0.1, missing_value_rate: float = 0.25
                     ) -> list[PatientSample]:
    rng = np.random.default_rng(seed)
    samples = []
    for p in range(n_patients):
        s = int(rng.integers(0, 4))
        lung = s + rng.normal(0, noise)
        systemic = s + rng.normal(0, noise)
        feats: dict[str, np.ndarray] = {}
        labels: dict[str, int] = {}
        for zone in zones:
            if rng.random() < missing_zone_rate:
                continue
            z = int(np.clip(np.rint(0.8 * lung + rng.normal(0, 0.8)), 0, 3))
            logits = -0.9 * (np.arange(4) - z) ** 2 + rng.normal(0, 0.6, 4)
            probs = np.exp(logits) / np.exp(logits).sum()
            findings = np.clip(np.array([1 - z / 3, z >= 1, z >= 2, z == 3, z >= 1, 0.1]) + rng.normal(0, 0.15, 6), 0, 1)
            extra = z * 0.3 + rng.normal(0, 1.0, d_extra)
            feats[zone] = np.concatenate([probs, findings, extra]).astype(np.float32)
            labels[zone] = z
        if not feats:
            feats[zones[0]] = np.concatenate([np.full(4, 0.25), np.full(6, 0.5), np.zeros(d_extra)]).astype(np.float32)
        samples.append(PatientSample(zone_features=feats, clinical=_clinical(systemic, s, rng, missing_value_rate),
                                     label=s, zone_labels=labels, patient=f"SYN-{p:04d}"))
    return samples


def _clinical(c: float, s: int, rng: np.random.Generator, missing: float) -> dict[str, object]:
    rec: dict[str, object] = {
        "age": float(np.clip(48 + 7 * s + rng.normal(0, 12), 18, 95)),
        "sex": "M" if rng.random() < 0.55 else "F",
        "spo2": float(np.clip(97.5 - 2.6 * c + rng.normal(0, 1.5), 70, 100)),
        "respiratory_rate": float(np.clip(15 + 3.2 * c + rng.normal(0, 2.5), 8, 50)),
        "oxygen_support": ["none", "nasal_cannula", "mask", "hfnc", "niv", "invasive"][int(np.clip(np.rint(c * 1.3), 0, 5))],
    }
    for name in COMORBIDITIES:
        rec[name] = bool(rng.random() < 0.1 + 0.07 * s)
    for name in SYMPTOMS:
        rec[name] = bool(rng.random() < 0.3 + 0.1 * (name in ("dyspnea", "fatigue")) * s)
    for key in list(rec):
        if rng.random() < missing:
            rec[key] = None
    return rec
