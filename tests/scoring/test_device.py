"""``LUSWEB_DEVICE``: the backbone, Grad-CAM++, the severity model and training run where it says,
``cuda`` without CUDA stops the worker at start with a message naming the variable, and the
device refactor leaves the scores as they were."""
from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pytest
import torch
from celery.signals import worker_init

from patients.imaging.core.phantoms import phantom_cohort_clip
from scoring import runtime, severity
from scoring.core.device import (
    HALF_PRECISION_CLIP_TOLERANCE,
    HALF_PRECISION_FRAME_TOLERANCE,
    DeviceUnavailable,
    half_dtype,
    module_devices,
    resolve_device,
)
from scoring.core.inference.scorer import load_scorer

CUDA = torch.cuda.is_available()
no_cuda = pytest.mark.skipif(CUDA, reason="this machine has CUDA: 'cuda' is available here")
with_cuda = pytest.mark.skipif(not CUDA, reason="no CUDA device on this machine")

#: The scorer's output on phantom clips (``phantom_cohort_clip(score, seed=3, n_frames=8)``),
#: computed with the default weights (lusweb-lite0f112-hr224-ens-v3) before the device path existed.
PINNED_CLIP_PROBS = {
    0: [0.208266, 0.037209, 0.608849, 0.145676],
    1: [0.110369, 0.041633, 0.664895, 0.183103],
    2: [0.040006, 0.076069, 0.669245, 0.21468],
    3: [0.052964, 0.082745, 0.646275, 0.218016],
}
PINNED_FIRST_FRAME_PROBS = {
    0: [0.036621, 0.959972, 0.003263, 0.000144],
    1: [0.028764, 0.966177, 0.005044, 1.4e-05],
    2: [0.002004, 0.98075, 0.017184, 6.2e-05],
    3: [0.903579, 0.094059, 0.002342, 2e-05],
}
#: Grad-CAM++ of the phantom of score 2 before the refactor: per map, its sum and its peak pixel.
PINNED_GRADCAM_SUMS = [720.0381, 511.7124, 543.2879, 534.6602]
PINNED_GRADCAM_PEAKS = [11890, 11864, 19323, 19323]


def _worker_start() -> None:
    """What Celery runs of ours when a worker starts: our ``worker_init`` receivers (the signal's
    other receiver, Django's fixup, needs a real worker instance)."""
    ours = [r for r in worker_init._live_receivers(None) if getattr(r, "__module__", "") == "scoring.runtime"]
    assert ours == [runtime.worker_device_check]
    for receiver in ours:
        receiver(signal=worker_init, sender=None)


def _phantom(score: int) -> np.ndarray:
    return phantom_cohort_clip(score, seed=3, n_frames=8).frames


@pytest.fixture
def fresh_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker's scorer and severity model loaded anew (the process keeps them otherwise)."""
    monkeypatch.setattr(runtime, "_scorers", {})
    monkeypatch.setattr(severity, "_model", {})


def test_cpu_and_auto_resolve_to_the_cpu_without_cuda_and_cuda_names_the_variable() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == (torch.device("cuda", 0) if CUDA else torch.device("cpu"))
    assert resolve_device("") == resolve_device("auto") and resolve_device(" CPU ") == torch.device("cpu")
    with pytest.raises(ValueError, match="LUSWEB_DEVICE='gpu'"):
        resolve_device("gpu")
    if not CUDA:
        with pytest.raises(DeviceUnavailable, match="LUSWEB_DEVICE=cuda but torch sees no CUDA device"):
            resolve_device("cuda")
    # float16 only on CUDA, only when asked; the CPU always runs float32
    assert half_dtype(torch.device("cpu"), True) is None and half_dtype(torch.device("cuda", 0), False) is None
    assert half_dtype(torch.device("cuda", 0), True) is torch.float16


@pytest.mark.parametrize("wanted", ["cpu", "auto"])
def test_the_worker_places_backbone_and_severity_model_where_lusweb_device_says(
        wanted: str, settings: Any, fresh_runtime: None) -> None:
    settings.DEVICE = wanted
    want = resolve_device(wanted)
    scorer = runtime.get_scorer("")
    assert scorer.device == want
    params = list(scorer.featurizer.model.parameters()) + list(scorer.featurizer.model.buffers())
    assert params and all(p.device == want for p in params)
    assert scorer.featurizer.batch == (64 if want.type == "cuda" else 16)
    model = severity.severity_model()
    assert model is not None and model.trained.model is not None
    assert module_devices(model.trained.model) == {want}
    # the inputs follow the backbone: scoring works there and the severity model reads its batch
    result = scorer.score_clip(_phantom(1))
    assert result.frame_probs.shape == (8, 4)
    zones = {z: np.full(model.trained.d_in, 0.25, np.float32) for z in model.trained.zones}
    out = model.predict_exam(zones, None)
    assert np.isclose(sum(out["probs"]), 1.0)


@pytest.mark.parametrize("wanted", ["cpu", "auto"])
@pytest.mark.parametrize("name", ["reg-stn", "mcrfnet", "cascade"])
def test_the_worker_places_the_networks_where_lusweb_device_says(
        name: str, wanted: str, settings: Any, fresh_runtime: None) -> None:
    settings.DEVICE = wanted
    want = resolve_device(wanted)
    scorer = runtime.get_scorer(name)
    nets = scorer.nets if name == "cascade" else [scorer]
    assert scorer.device == want and all(module_devices(n.model) == {want} for n in nets)
    if name == "cascade":
        assert module_devices(scorer.lite.featurizer.model) == {want}
    assert scorer.score_clip(_phantom(1)).frame_probs.shape == (8, 4)


@with_cuda
def test_cuda_places_every_parameter_on_the_gpu(settings: Any, fresh_runtime: None) -> None:
    settings.DEVICE = "cuda"
    scorer = runtime.get_scorer("")
    assert module_devices(scorer.featurizer.model) == {torch.device("cuda", 0)}
    model = severity.severity_model()
    assert model is not None and model.trained.model is not None
    assert module_devices(model.trained.model) == {torch.device("cuda", 0)}
    got = scorer.score_clip(_phantom(2))
    assert np.allclose(got.clip_probs, PINNED_CLIP_PROBS[2], atol=1e-3)
    scorer.to("cpu")
    for name in ("reg-stn", "cascade"):  # the networks too, with the scores they give on the CPU
        net = runtime.get_scorer(name)
        on_gpu = net.score_clip(_phantom(2))
        net.to("cpu")
        assert np.allclose(on_gpu.clip_probs, net.score_clip(_phantom(2)).clip_probs, atol=1e-3), name


@no_cuda
def test_cuda_without_cuda_stops_the_worker_at_start_naming_the_variable(
        settings: Any, caplog: pytest.LogCaptureFixture) -> None:
    settings.DEVICE = "cuda"
    with caplog.at_level(logging.CRITICAL, logger="scoring.runtime"), pytest.raises(SystemExit) as stop:
        _worker_start()
    assert "LUSWEB_DEVICE=cuda" in str(stop.value.code) and "no CUDA device" in str(stop.value.code)
    assert "worker cannot start" in caplog.text and "LUSWEB_DEVICE=cuda" in caplog.text


def test_the_worker_logs_its_device_at_start(settings: Any, caplog: pytest.LogCaptureFixture) -> None:
    settings.DEVICE = "cpu"
    settings.HALF_PRECISION = True  # never on the CPU
    with caplog.at_level(logging.INFO, logger="scoring.runtime"):
        _worker_start()
    assert "scoring device: cpu (" in caplog.text and "LUSWEB_DEVICE=cpu, float32, 16 images per pass" in caplog.text


@no_cuda
def test_training_follows_lusweb_device(monkeypatch: pytest.MonkeyPatch) -> None:
    """The frame heads train on ``LUSWEB_DEVICE`` (here: cuda asked, none there -> refused)."""
    from scoring.core.features.recipe import Recipe
    from scoring.core.training.fitting import fit_frame_head

    rng = np.random.default_rng(0)
    feats = [rng.normal(size=(5, 12)).astype(np.float32) for _ in range(8)]
    y = np.arange(8) % 4
    findings = np.full((8, 6), -1.0, np.float32)
    monkeypatch.setenv("LUSWEB_DEVICE", "cuda")
    with pytest.raises(DeviceUnavailable, match="LUSWEB_DEVICE=cuda"):
        fit_frame_head(feats, y, findings, Recipe(), seed=0, steps=2)
    monkeypatch.setenv("LUSWEB_DEVICE", "cpu")
    sev, _fnd = fit_frame_head(feats, y, findings, Recipe(), seed=0, steps=2)
    cpu_sev, _ = fit_frame_head(feats, y, findings, Recipe(), seed=0, steps=2, device=torch.device("cpu"))
    assert sev.w.shape == (4, 12) and np.array_equal(sev.w, cpu_sev.w)


def test_scores_and_heat_map_are_those_of_the_scorer_before_the_device_path() -> None:
    scorer = load_scorer().to("cpu", half=True)  # half precision is ignored on the CPU: float32
    assert scorer.featurizer.half is None
    for score, clip_probs in PINNED_CLIP_PROBS.items():
        got = scorer.score_clip(_phantom(score))
        assert np.allclose(got.clip_probs, clip_probs, atol=2e-6), score
        assert np.allclose(got.frame_probs[0], PINNED_FIRST_FRAME_PROBS[score], atol=2e-6), score
    maps = np.stack(scorer.gradcam(_phantom(2)).maps)
    assert np.allclose(maps.sum((1, 2)), PINNED_GRADCAM_SUMS, rtol=1e-4)
    assert [int(i) for i in maps.reshape(len(maps), -1).argmax(1)] == PINNED_GRADCAM_PEAKS


def test_float16_feature_passes_stay_within_the_stated_tolerance() -> None:
    """The CUDA half-precision path (autocast float16, exercised here on the CPU, which rounds
    the same way) moves the probabilities by less than the documented tolerances."""
    scorer = load_scorer(cached=False)
    clip = _phantom(3)
    ref = scorer.score_clip(clip)
    scorer.featurizer.half = torch.float16
    got = scorer.score_clip(clip)
    frame_diff = float(np.abs(got.frame_probs - ref.frame_probs).max())
    clip_diff = float(np.abs(got.clip_probs - ref.clip_probs).max())
    assert 0.0 < frame_diff <= HALF_PRECISION_FRAME_TOLERANCE  # really ran in float16
    assert clip_diff <= HALF_PRECISION_CLIP_TOLERANCE and got.clip_score == ref.clip_score
