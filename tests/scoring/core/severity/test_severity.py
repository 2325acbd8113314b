"""Severity maths pinned on tiny tensors, and MA-CLR beating single modalities on synthetic data."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from scoring.core.severity.nets import (
    CLINICAL_FEATURES,
    DSAMIL,
    cc_loss,
    cl_loss,
    dsa_mil_loss,
    encode_clinical,
    ma_loss,
    sample_contrast_pairs,
)


def _cos(a: list[float], b: list[float]) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


U = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
V = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])


def test_ma_loss_hand_computed() -> None:
    # cos(u0,v0)=1, cos(u1,v1)=1/sqrt2, cos(u2,v2)=1/sqrt2
    expected = ((1 - 1) + (1 - 1 / math.sqrt(2)) + (1 - 1 / math.sqrt(2))) / 3
    assert ma_loss(U, V).item() == pytest.approx(expected, abs=1e-6)


def test_cl_loss_hand_computed() -> None:
    j, k = torch.tensor([1, 2, 0]), torch.tensor([2, 0, 1])
    terms = []
    u, v = U.tolist(), V.tolist()
    for i in range(3):
        terms.append(_cos(u[i], v[j[i]]) + _cos(u[i], v[k[i]]) + _cos(v[i], v[j[i]]) + _cos(v[i], v[k[i]]))
    assert cl_loss(U, V, j, k).item() == pytest.approx(sum(terms) / 3, abs=1e-6)


def test_cc_loss_hand_computed() -> None:
    j, k = torch.tensor([1, 2, 0]), torch.tensor([2, 0, 1])
    v = V.tolist()
    expected = np.mean([max(_cos(v[i], v[k[i]]) - _cos(v[i], v[j[i]]), 0.0) for i in range(3)])
    # i=0: cos(v0,v2)=0, cos(v0,v1)=.707 -> 0 ; i=1: cos(v1,v0)=.707 - cos(v1,v2)=.707 -> 0 ; i=2: cos(v2,v1)=.707 - 0 -> .707
    assert expected == pytest.approx((1 / math.sqrt(2)) / 3, abs=1e-6)
    assert cc_loss(V, j, k).item() == pytest.approx(expected, abs=1e-6)


def test_dsa_mil_loss_is_patient_ce_plus_mean_zone_ce() -> None:
    logits = torch.tensor([[2.0, 0.0, 0.0, 0.0]])
    y = torch.tensor([0])
    zone_logits = torch.tensor([[[0.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0], [5.0, 5.0, 5.0, 5.0]]])
    zone_y = torch.tensor([[1, 2, -1]])  # third zone unlabelled
    mask = torch.tensor([[True, True, False]])
    patient = -math.log(math.exp(2) / (math.exp(2) + 3))
    z1 = -math.log(math.e / (math.e + 3))
    z2 = -math.log(1 / (math.e + 3))
    assert dsa_mil_loss(logits, y, zone_logits, zone_y, mask).item() == pytest.approx(patient + (z1 + z2) / 2, abs=1e-5)


def test_attention_sums_to_one_over_present_zones_only() -> None:
    torch.manual_seed(0)
    model = DSAMIL(d_in=5, hidden=8, attn=4).eval()
    x = torch.randn(3, 14, 5)
    mask = torch.zeros(3, 14, dtype=torch.bool)
    mask[0, :1] = True  # a single zone
    mask[1, [0, 3, 7]] = True
    mask[2, :] = True  # all 14
    out = model(x, mask)
    a = out["attention"]
    assert torch.allclose(a.sum(1), torch.ones(3), atol=1e-6)
    assert (a[~mask] == 0).all() and a[0, 0].item() == pytest.approx(1.0)
    # The bag is the attention-weighted sum of the zone embeddings.
    h = model.f(x)
    assert torch.allclose(out["bag"][1], (a[1, :, None] * h[1]).sum(0), atol=1e-6)
    # Absent zones cannot change the result.
    x2 = x.clone()
    x2[1, 5] = 100.0
    assert torch.allclose(model(x2, mask)["logits"][1], out["logits"][1], atol=1e-6)


def test_attention_formula_hand_computed() -> None:
    model = DSAMIL(d_in=2, hidden=2, attn=2)
    with torch.no_grad():
        model.V.weight.copy_(torch.eye(2))
        model.V.bias.zero_()
        model.w.weight.copy_(torch.tensor([[1.0, -1.0]]))
    h = torch.tensor([[[1.0, 0.0], [0.0, 2.0], [3.0, -1.0]]])
    a = model.attention(h, torch.tensor([[True, True, True]]))
    s = np.array([1.0, -2.0, 3.0])  # w^T ReLU(V h): [1-0, 0-2, 3-0]
    assert torch.allclose(a[0], torch.tensor(np.exp(s) / np.exp(s).sum(), dtype=torch.float32), atol=1e-6)


def test_clinical_encoding_masks_unknowns() -> None:
    values, known = encode_clinical({"age": 70, "sex": "M", "diabetes": True, "cough": None, "spo2": 90,
                                     "oxygen_support": "hfnc", "respiratory_rate": 30})
    idx = {n: i for i, n in enumerate(CLINICAL_FEATURES)}
    assert values[idx["age"]] == pytest.approx(0.7) and known[idx["age"]] == 1
    assert values[idx["male"]] == 1 and values[idx["diabetes"]] == 1
    assert known[idx["cough"]] == 0 and known[idx["fever"]] == 0
    assert values[idx["spo2"]] == pytest.approx(0.5) and values[idx["oxygen_support"]] == pytest.approx(0.5)
    assert values[idx["respiratory_rate"]] == pytest.approx(0.75)
    empty_values, empty_known = encode_clinical(None)
    assert not empty_values.any() and not empty_known.any()


def test_contrast_pairs_respect_the_distance_rule() -> None:
    ps = np.array([0, 1, 3, 3, 2])
    rows, j, k = sample_contrast_pairs(ps, np.random.default_rng(0))
    assert len(rows) == len(ps)
    for i, a, b in zip(rows, j, k, strict=True):
        assert ps[a] != ps[i] and ps[b] != ps[i]
        assert abs(ps[i] - ps[a]) < abs(ps[i] - ps[b])
    rows, _, _ = sample_contrast_pairs(np.array([0, 0, 1, 1]), np.random.default_rng(0))
    assert len(rows) == 0  # only one other severity: no pair at two distances


@pytest.mark.slow
def test_ma_clr_beats_both_single_modalities_in_cv() -> None:
    from scoring.core.severity.synth import ZONES_12, synthetic_cohort
    from scoring.core.severity.training import TrainConfig, cross_validate

    samples = synthetic_cohort(n_patients=160, seed=3)
    table = cross_validate(samples, ZONES_12, kinds=("dsa_mil", "clinical_mlp", "ma_clr"), folds=4, seeds=(0,),
                           cfg=TrainConfig(epochs=120))
    ma = table["ma_clr"]["accuracy_mean"]
    assert ma > table["dsa_mil"]["accuracy_mean"], table
    assert ma > table["clinical_mlp"]["accuracy_mean"], table
    assert ma > 0.5


def test_ce_reference() -> None:
    # Sanity: torch's CE is the negative log-softmax we hand-computed above.
    logits = torch.tensor([[2.0, 0.0, 0.0, 0.0]])
    assert F.cross_entropy(logits, torch.tensor([0])).item() == pytest.approx(-math.log(math.exp(2) / (math.exp(2) + 3)))


def test_contrast_losses_over_the_rows_that_have_pairs_hand_computed() -> None:
    """Only the patients with a contrast pair are anchors; their pair indices point into the whole
    batch (a batch of severities 0, 1, 2: the middle one has no pair at two distances)."""
    j, k = torch.tensor([1, 1]), torch.tensor([2, 0])
    rows = torch.tensor([0, 2])
    u, v = U.tolist(), V.tolist()
    cl = np.mean([_cos(u[i], v[a]) + _cos(u[i], v[b]) + _cos(v[i], v[a]) + _cos(v[i], v[b])
                  for i, a, b in zip(rows.tolist(), j.tolist(), k.tolist(), strict=True)])
    cc = np.mean([max(_cos(v[i], v[b]) - _cos(v[i], v[a]), 0.0)
                  for i, a, b in zip(rows.tolist(), j.tolist(), k.tolist(), strict=True)])
    assert cl_loss(U, V, j, k, rows=rows).item() == pytest.approx(cl, abs=1e-6)
    assert cc_loss(V, j, k, rows=rows).item() == pytest.approx(cc, abs=1e-6)


def test_ma_clr_trains_on_a_cohort_without_critical_patients() -> None:
    """Three adjacent severities (no critical patient, as in many studies): MA-CLR crashed with a
    size mismatch in the contrastive loss."""
    from scoring.core.severity.bundle import TrainConfig
    from scoring.core.severity.synth import ZONES_12, synthetic_cohort
    from scoring.core.severity.training import train

    samples = [s for s in synthetic_cohort(n_patients=90, seed=5) if s.label < 3]
    assert {s.label for s in samples} == {0, 1, 2}
    trained = train("ma_clr", samples, ZONES_12, TrainConfig(epochs=4))
    assert trained.kind == "ma_clr" and trained.model is not None
