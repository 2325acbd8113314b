"""MCRFNet, Reg-STN and the cascade as product scorers (issue 19, item 5: selectable per study):
the shipped weights files load by name or version into the scorer contract, every frame is scored,
the clip score is the one ``lus_score`` gives, and Reg-STN's crops come back on the original frame
(hand-computed mapping)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from patients.imaging.core.phantoms import phantom_cohort_clip
from scoring.core.features.preprocess import Geometry
from scoring.core.inference.loader import load_model, shipped_models, weights_format
from scoring.core.inference.net_scorer import (
    NETWORK_MAP,
    CascadeScorer,
    NetScorer,
    mcrfnet_attribution,
    original_boxes,
    six_class_from_probs,
)
from scoring.core.inference.scorer import Scorer
from scoring.core.inference.vote import vote_batch
from scoring.core.models.regstn import constrained_theta


def _theta(s: float, tx: float, ty: float) -> np.ndarray:
    return np.array([[s, 0.0, tx], [0.0, s, ty]])


def test_crops_map_back_to_the_original_frame_by_hand() -> None:
    # A 120 x 240 frame whose sector box (rows 10-110, columns 20-220: 100 x 200) was resized to
    # 56 x 112 and centred on a 112-px canvas (rows 28-84).
    geom = Geometry(orig_shape=(120, 240), bbox=(10, 110, 20, 220), scale=0.56, offset=(28, 0), size=112,
                    new_hw=(56, 112), mask=np.ones((120, 240), bool))
    theta = np.stack([_theta(0.5, 0.0, 0.0), _theta(0.5, 0.5, -0.5)])[None]  # [1 frame, 2 crops, 2, 3]
    boxes = original_boxes(theta, geom)
    # Crop 1: canvas [28, 84] x [28, 84] -> columns 20 + 28 * 200/112 = 70 .. 20 + 84 * 200/112 = 170,
    # rows 10 + 0 = 10 .. 10 + 56 * 100/56 = 110.
    assert boxes[0, 0] == pytest.approx([70, 10, 170, 110])
    # Crop 2: canvas columns [56, 112] -> 120 .. 220; rows [0, 56] -> 10 - 50 = -40 (clipped to 0) .. 60.
    assert boxes[0, 1] == pytest.approx([120, 0, 220, 60])


def test_six_class_from_the_network_head() -> None:
    probs = np.array([[0.7, 0.1, 0.1, 0.05, 0.05, 0.0], [0.0, 0.1, 0.1, 0.6, 0.1, 0.1], [0, 0, 0, 0, 0.1, 0.9]])
    r = six_class_from_probs(probs)
    assert r.frame_classes == ["A-line", "B1&B2-line", "consolidation"]
    assert r.mean == pytest.approx((0 + 2.5 + 4) / 3)


def test_every_shipped_file_loads_by_name_and_version_into_its_scorer() -> None:
    shipped = {m.name: m for m in shipped_models()}
    assert set(shipped) == {"default", "mcrfnet", "reg-stn", "cascade"}
    kinds = {"default": Scorer, "mcrfnet": NetScorer, "reg-stn": NetScorer, "cascade": CascadeScorer}
    for name, kind in kinds.items():
        by_name = load_model(name)
        assert isinstance(by_name, kind), name
        assert by_name.version == shipped[name].meta["version"]
        assert load_model(by_name.version) is by_name  # a registered version resolves to the same file
    assert weights_format(shipped["reg-stn"].path) == "lusweb-net-1"
    with pytest.raises(FileNotFoundError, match="no weights 'resnet-9000'"):
        load_model("resnet-9000")


def test_what_a_weights_file_declares_is_read_once_per_version_of_the_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shipped = {m.name: m for m in shipped_models()}
    copy = tmp_path / "reg-stn.pt"
    copy.write_bytes(shipped["reg-stn"].path.read_bytes())
    reads: list[str] = []
    real_load = torch.load

    def counted(f: Any, *args: Any, **kwargs: Any) -> Any:
        reads.append(str(f))
        return real_load(f, *args, **kwargs)

    monkeypatch.setattr(torch, "load", counted)
    assert weights_format(copy) == weights_format(copy) == "lusweb-net-1"
    assert reads == [str(copy)]  # the second answer came from the cache
    shipped_models()
    assert reads == [str(copy)]  # the shipped files' headers were read before this test
    os.utime(copy, (copy.stat().st_atime, copy.stat().st_mtime + 5))  # a new version of the file
    assert weights_format(copy) == "lusweb-net-1" and reads == [str(copy)] * 2


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    return phantom_cohort_clip(2, seed=3, n_frames=12, rows=160, columns=128).frames


def test_regstn_scores_every_frame_and_returns_its_crops(frames: np.ndarray) -> None:
    scorer = load_model("reg-stn")
    assert isinstance(scorer, NetScorer)
    r = scorer.score_clip(frames)
    assert r.frame_probs.shape == (12, 4) and np.allclose(r.frame_probs.sum(1), 1.0)
    probs, clip = scorer.score_frames(frames)  # what lus_score and lus_eval give
    assert np.allclose(r.frame_probs, probs) and r.clip_score == clip["clip_score"]
    assert np.allclose(r.clip_probs, clip["clip_probs"]) and r.aggregator == "uninorm"
    assert r.findings == {} and r.six_class is None and r.domain() is None  # nothing it does not predict
    # The crops: the network's own transforms, mapped to fractions of the original frame.
    x, geom = scorer._inputs(frames)
    with torch.inference_mode():
        theta = scorer.model.transforms(x).double().numpy()
    want = original_boxes(theta, geom) / np.array([128, 160, 128, 160])
    assert r.localisation is not None and r.localisation.shape == (12, 2, 4)
    assert np.allclose(r.localisation, want, atol=1e-6)
    assert (r.localisation >= 0).all() and (r.localisation <= 1).all()
    assert (r.localisation[..., 2] > r.localisation[..., 0]).all()
    # Crop scales stay in the network's range [0.4, 0.9] of the canvas.
    s = theta[..., 0, 0]
    assert (s >= 0.4 - 1e-6).all() and (s <= 0.9 + 1e-6).all()
    assert constrained_theta(torch.zeros(3), 0.4, 0.9)[0, 0] == pytest.approx(0.65)
    # Batching does not change a score (batch norm in eval mode).
    small = load_model("reg-stn", cached=False).to("cpu", batch=5)
    assert np.allclose(small.score_clip(frames).frame_probs, r.frame_probs, atol=1e-6)
    with pytest.raises(ValueError, match="no heat map.*two crops"):
        scorer.gradcam(frames)


def test_mcrfnet_gives_its_six_class_head(frames: np.ndarray) -> None:
    scorer = load_model("mcrfnet")
    r = scorer.score_clip(frames)
    assert r.six_class is not None and len(r.six_class.frame_classes) == 12
    assert r.localisation is None and r.aggregator == "mean"
    assert r.clip_score == int(np.argmax(r.frame_probs.mean(0)))


def test_the_cascade_votes_its_members(frames: np.ndarray) -> None:
    scorer = load_model("cascade")
    assert isinstance(scorer, CascadeScorer)
    r = scorer.score_clip(frames)
    assert list(r.members) == ["lite0", "mcrfnet", "reg-stn"]
    members = [np.asarray(p) for p in r.members.values()]
    probs, classes, rules = vote_batch([p[None] for p in members])
    assert r.clip_score == int(classes[0]) and r.aggregator == f"vote:{rules[0]}"
    assert np.allclose(r.clip_probs, probs[0], atol=1e-5)
    # Each member's clip probabilities are its own scorer's.
    lite = scorer.lite.score_clip(frames)
    assert np.allclose(members[0], lite.clip_probs, atol=1e-5)
    assert np.allclose(members[2], scorer.nets[1].score_frames(frames)[1]["clip_probs"], atol=1e-5)
    # The curve is the mean of the members' frame probabilities; the crops are Reg-STN's.
    nets = [n.score_frames(frames)[0] for n in scorer.nets]
    assert np.allclose(r.frame_probs, np.mean([lite.frame_probs, *nets], axis=0), atol=1e-6)
    assert r.localisation is not None and r.localisation.shape == (12, 2, 4)
    assert r.findings == lite.findings


def test_mcrfnets_heat_map_explains_its_clip_score(frames: np.ndarray) -> None:
    scorer = load_model("mcrfnet")
    assert isinstance(scorer, NetScorer)
    shown = scorer.score_clip(frames).clip_score
    cam = scorer.gradcam(frames)
    assert cam.model == NETWORK_MAP and cam.target == shown and cam.indices == tuple(range(12))
    x, geom = scorer._inputs(frames)
    maps = np.stack(cam.maps)
    assert maps.shape == (12, 160, 128) and maps.max() == pytest.approx(1.0) and maps.min() >= 0
    assert not maps[:, ~geom.mask].any()  # nothing outside the ultrasound sector
    # Chunks of 5 frames give the map of one pass over all frames (the weight carries the mean).
    whole = mcrfnet_attribution(scorer.model, x, shown, batch=64)
    assert np.allclose(mcrfnet_attribution(scorer.model, x, shown, batch=5), whole, atol=1e-5)


def test_mcrfnets_map_is_gradient_times_activation_by_hand() -> None:
    # One frame: L = log(p / (1 - p)) with p = softmax(z)[c], z = W a_bar + b, a_bar the mean of
    # the trunk map A [C, h, w]. dL/dz_j = (1[j = c] - p_j) / (1 - p_c); each place's contribution
    # is sum_j dL/dz_j * W_j . A[:, place] / (h w), spread on the canvas as a density.
    scorer = load_model("mcrfnet")
    model = scorer.model
    x = scorer.inputs(phantom_cohort_clip(3, seed=2, n_frames=1, rows=112, columns=112).frames)
    c = 2
    with torch.inference_mode():
        a = model.trunk(model.stem(model.fusion(x)))[0].double().numpy()  # [C, h, w]
    w = model.score_head.weight.detach().double().numpy()
    z = w @ a.mean((1, 2)) + model.score_head.bias.detach().double().numpy()
    p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    g = (np.eye(4)[c] - p) / (1 - p[c])
    place = np.einsum("j,jc,chw->hw", g, w, a) / a[0].size
    got = torch.nn.functional.interpolate(torch.from_numpy(place)[None, None].float(), size=(112, 112),
                                          mode="bilinear", align_corners=False)[0, 0].numpy() * (a[0].size / 112 ** 2)
    want = np.clip(got, 0, None) / np.clip(got, 0, None).max()
    assert np.allclose(mcrfnet_attribution(model, x, c)[0], want, atol=1e-4)
