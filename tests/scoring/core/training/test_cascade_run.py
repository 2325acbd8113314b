"""``lus_train --arch cascade``: stage one inside each training part, three different networks vote."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from scoring.core.inference.vote import vote_rule
from scoring.core.training.cascade_run import lite0_recipe, load_cascade
from scoring.core.training.cli import train_main


def test_the_lite0_member_is_the_default_recipe_without_its_own_filter() -> None:
    from scoring.core.features.recipe import Recipe

    assert lite0_recipe().to_dict() == {**Recipe().to_dict(), "noise_filter": 0}


def test_the_command_cross_validates_saves_and_votes(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "cascade.pt"
    assert train_main(["--arch", "cascade", "--data", str(shared_data), "--limit", "30", "--epochs", "1",
                       "--clip-frames", "2", "--epoch-frames", "2", "--cv-seeds", "0", "--folds", "2",
                       "--out", str(out)]) == 0
    cascade = load_cascade(out)
    meta: dict[str, Any] = cascade.meta
    cv = meta["cv"]
    assert sum(cv["vote_rules"].values()) == 30  # every clip voted once (one seed)
    assert set(cv["vote_rules"]) <= {"majority", "confident", "median"}
    assert 0.0 < cv["stage_one_kept_share"] <= 1.0
    assert meta["arch"] == "cascade" and set(meta["recipe"]) == {"mcrfnet", "reg-stn"}
    assert len(meta["stage_one_dropped"]) < 30
    assert [n.recipe.arch for n in cascade.nets] == ["mcrfnet", "reg-stn"]
    frames = np.random.default_rng(0).integers(0, 255, (6, 150, 130), dtype=np.uint8)
    members, vote = cascade.score_frames(frames)
    assert len(members) == 3 and all(p.shape == (4,) for p in members)
    assert vote["rule"] == vote_rule(members)
    votes = [int(np.argmax(p)) for p in members]
    if vote["rule"] == "majority":
        assert votes.count(int(vote["clip_score"])) >= 2  # type: ignore[call-overload]
    card = out.with_suffix(".md").read_text()
    assert meta["version"] in card and "Cascade (Xing et al. 2022)" in card


def test_load_refuses_another_file(tmp_path: Path) -> None:
    import torch

    torch.save({"format": "lusweb-net-1"}, tmp_path / "net.pt")
    with pytest.raises(ValueError, match="is not a LUSWeb cascade weights file"):
        load_cascade(tmp_path / "net.pt")
