"""MCRFNet and Reg-STN trained end to end: recipe, inputs, learning, the same folds, the command."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from scoring.core.features.modalities import modality_stack
from scoring.core.inference.aggregate import UninormAggregator
from scoring.core.training import nets
from scoring.core.training.cli import train_main
from scoring.core.training.cv import cv_splits
from scoring.core.training.nets import NetRecipe, clip_prediction, net_input, predict_clips, train_net
from scoring.core.training.nets_run import load_net, net_card


def _stripes(score: int, rng: np.random.Generator, n: int = 4, size: int = 32) -> np.ndarray:
    """Frames with horizontal stripes (A-lines, score 0) or vertical ones (B-lines, score 3),
    at a random phase and with noise."""
    out = np.zeros((n, size, size), np.float32)
    for t in range(n):
        phase = rng.integers(0, 6)
        line = (np.arange(size) + phase) % 6 < 2
        img = np.tile(line[:, None], (1, size)) if score == 0 else np.tile(line[None, :], (size, 1))
        out[t] = 0.6 * img + 0.4 * rng.random((size, size))
    return np.round(out / out.max() * 255).astype(np.uint8)


def test_recipe_refuses_bad_values_by_name() -> None:
    with pytest.raises(ValueError, match="unknown network architecture 'resnet'"):
        NetRecipe(arch="resnet")
    with pytest.raises(ValueError, match="epoch_frames must be in 1..clip_frames"):
        NetRecipe(arch="mcrfnet", clip_frames=4, epoch_frames=8)
    r = NetRecipe(arch="reg-stn", epochs=3)
    assert NetRecipe.from_dict(r.to_dict()) == r
    with pytest.raises(ValueError, match=r"unknown network recipe keys \['depth'\]"):
        NetRecipe.from_dict({**r.to_dict(), "depth": 3})
    with pytest.raises(ValueError, match="unknown clip aggregator 'max'; choose one of mean, uninorm"):
        NetRecipe(arch="reg-stn", aggregator="max")
    assert NetRecipe.from_dict({k: v for k, v in r.to_dict().items() if k != "aggregator"}).aggregator == "mean"


def test_inputs_are_the_modalities_or_the_grey_frame() -> None:
    frames = _stripes(3, np.random.default_rng(0))
    m = net_input(NetRecipe(arch="mcrfnet", size=32), frames)
    assert m.shape == (4, 3, 32, 32)
    np.testing.assert_allclose(m.numpy(), modality_stack(frames.astype(np.float32) / 255), atol=1e-6)
    g = net_input(NetRecipe(arch="reg-stn", size=32), frames)
    assert g.shape == (4, 1, 32, 32)
    assert float(g.max()) == pytest.approx(1.0) and float(g.min()) >= 0.0


def test_clip_prediction_is_the_argmax_of_the_mean() -> None:
    probs = np.array([[0.5, 0.3, 0.1, 0.1], [0.0, 0.2, 0.1, 0.7], [0.1, 0.6, 0.2, 0.1]])
    out = clip_prediction(probs)
    np.testing.assert_allclose(np.asarray(out["clip_probs"], float), [0.2, 1.1 / 3, 0.4 / 3, 0.3])
    assert out["clip_score"] == 1


def test_a_learned_uninorm_gives_the_clip_its_aggregation() -> None:
    probs = np.array([[0.5, 0.3, 0.1, 0.1], [0.0, 0.2, 0.1, 0.7], [0.1, 0.6, 0.2, 0.1]])
    uninorm = UninormAggregator(4)
    with torch.no_grad():
        uninorm.a.copy_(torch.tensor([2.0, -1.0, 0.0, 1.0]))
    out = clip_prediction(probs, uninorm)
    expected, score = uninorm.aggregate(probs)
    np.testing.assert_allclose(np.asarray(out["clip_probs"], float), expected)
    assert out["clip_score"] == score == int(np.argmax(expected))


def test_fit_net_fits_the_uninorm_only_when_the_recipe_asks() -> None:
    torch.set_num_threads(2)
    rng = np.random.default_rng(4)
    y = np.array([0, 3] * 6)
    mean = NetRecipe(arch="reg-stn", size=32, clip_frames=3, epoch_frames=3, epochs=2, batch=8)
    clips = [net_input(mean, _stripes(int(s), rng, n=3)) for s in y]
    model, none = nets.fit_net(mean, clips, y, np.full(len(y), -1), seed=0)
    assert none is None
    learned = NetRecipe(**{**mean.to_dict(), "aggregator": "uninorm"})  # type: ignore[arg-type]
    model2, uninorm = nets.fit_net(learned, clips, y, np.full(len(y), -1), seed=0)
    for wa, wb in zip(model.state_dict().values(), model2.state_dict().values(), strict=True):
        assert torch.equal(wa, wb)  # the same network: the aggregator is fitted after it
    assert uninorm is not None and not torch.allclose(uninorm.a, UninormAggregator(4).a)
    preds = predict_clips(model2, learned, clips, uninorm)
    for p, x in zip(preds, clips, strict=True):
        expected, _ = uninorm.aggregate(nets.frame_probs(model2, learned, x))
        np.testing.assert_allclose(np.asarray(p["clip_probs"], float), expected)


@pytest.mark.parametrize("arch", ["mcrfnet", "reg-stn"])
def test_a_network_learns_a_b_lines_from_a_lines_on_unseen_clips(arch: str) -> None:
    torch.set_num_threads(2)
    rng = np.random.default_rng(1)
    recipe = NetRecipe(arch=arch, size=32, clip_frames=4, epoch_frames=4, epochs=12, batch=16, lr=5e-3)
    y = np.array([0, 3] * 12)
    clips = [net_input(recipe, _stripes(int(s), rng)) for s in y]
    six = np.where(y == 0, 0, 4)  # A-line / B2-line
    model = train_net(recipe, clips[:16], y[:16], six[:16], seed=0)
    pred = [p["clip_score"] for p in predict_clips(model, recipe, clips[16:])]
    assert np.mean(np.array(pred) == y[16:]) >= 0.875  # 7 of 8 unseen clips or better; chance is 0.5


def test_one_seed_gives_one_model() -> None:
    rng = np.random.default_rng(3)
    recipe = NetRecipe(arch="mcrfnet", size=32, clip_frames=2, epoch_frames=2, epochs=1, batch=4)
    y = np.array([0, 1, 2, 3])
    clips = [net_input(recipe, _stripes(int(s) // 3 * 3, rng, n=2)) for s in y]
    a, b = (train_net(recipe, clips, y, np.full(4, -1), seed=5) for _ in range(2))
    for wa, wb in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
        assert torch.equal(wa, wb)


def test_cv_uses_the_default_scorers_folds(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(2)
    recipe = NetRecipe(arch="reg-stn", size=32, clip_frames=2, epoch_frames=2, epochs=1, batch=4)
    y = np.array([0, 1, 2, 3] * 5)
    groups = [f"p{i // 2}" for i in range(20)]
    clips = [net_input(recipe, _stripes(0, rng, n=2)) for _ in y]
    seen: list[list[int]] = []
    real = nets.predict_clips

    def spy(model: torch.nn.Module, r: NetRecipe, inputs: list[torch.Tensor],
            uninorm: UninormAggregator | None = None) -> list[dict[str, object]]:
        seen.append([next(i for i, c in enumerate(clips) if c is x) for x in inputs])
        return real(model, r, inputs, uninorm)

    monkeypatch.setattr(nets, "predict_clips", spy)
    cv: dict[str, Any] = nets.cross_validate_net(recipe, clips, y, np.full(20, -1), groups, seeds=(0, 1), k=5)
    expected = [sorted(te.tolist()) for s in (0, 1) for _, te in cv_splits(y, groups, np.ones(20, bool), 5, s)]
    assert [sorted(s) for s in seen] == expected
    assert cv["seeds"] == [0, 1] and cv["n_clips"] == 20 and cv["n_patients"] == 10
    assert len(cv["accuracy"]["per_seed"]) == 2 and cv["fold_training_seconds"] > 0


def test_the_command_trains_saves_and_reproduces_its_cv(shared_data: Path, tmp_path: Path) -> None:
    args = ["--arch", "reg-stn", "--data", str(shared_data), "--limit", "12", "--epochs", "1", "--clip-frames", "4",
            "--epoch-frames", "2", "--cv-seeds", "0", "--folds", "2"]
    assert train_main([*args, "--out", str(tmp_path / "a.pt")]) == 0
    assert train_main([*args, "--out", str(tmp_path / "b.pt")]) == 0
    a, b = load_net(tmp_path / "a.pt"), load_net(tmp_path / "b.pt")
    meta: dict[str, Any] = a.meta
    assert meta["cv"]["accuracy"] == b.meta["cv"]["accuracy"]  # type: ignore[index]  # the command reproduces its CV
    assert a.meta["version"] == "lusweb-regstn112-s0" and a.meta["training_clips"] == 12
    assert "--arch reg-stn" in meta["command"]
    frames = np.random.default_rng(0).integers(0, 255, (5, 140, 120), dtype=np.uint8)
    probs, clip = a.score_frames(frames)
    assert probs.shape == (5, 4)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-6)
    assert clip["clip_score"] in (0, 1, 2, 3)
    card = net_card(a.meta, tmp_path / "a.pt")
    assert "lusweb-regstn112-s0" in card and f"{meta['cv']['accuracy']['mean']:.3f}" in card
    json.dumps(a.meta)  # plain JSON types
    # Reg-STN aggregates with the learned uninorm (Roy et al.), carried by the file.
    assert a.recipe.aggregator == "uninorm" and a.uninorm is not None and "learned uninorm" in meta["architecture"]
    assert len(meta["uninorm_neutral_elements"]) == 4
    assert clip["clip_score"] == a.uninorm.aggregate(probs)[1]
    raw = torch.load(tmp_path / "a.pt", weights_only=True)
    torch.save({**raw, "uninorm": None}, tmp_path / "broken.pt")
    with pytest.raises(ValueError, match="aggregates with the uninorm but the file carries none"):
        load_net(tmp_path / "broken.pt")


def test_the_command_refuses_pocus_and_other_files(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="COVID-BLUES only"):
        train_main(["--arch", "mcrfnet", "--with-pocus", "--out", str(tmp_path / "x.pt")])
    torch.save({"meta": {}}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="is not a LUSWeb network weights file"):
        load_net(tmp_path / "other.pt")
