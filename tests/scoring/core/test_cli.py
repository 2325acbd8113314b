"""End-to-end CLI on a tiny phantom data set in the COVID-BLUES layout (seconds)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from patients.imaging.core.phantoms import phantom_cohort_clip, write_mp4
from scoring.core import cli


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    vids = root / "covid-blues" / "lus_videos"
    vids.mkdir(parents=True)
    rows = ["video_file,Severity Score,A-lines,B-lines,comments"]
    for i in range(8):
        score = i % 4
        ph = phantom_cohort_clip(score, seed=i, n_frames=8, rows=128, columns=128)
        stem = f"patient_{i // 2 + 1}_R{i % 2 + 1}"
        write_mp4(ph, vids / f"{stem}.mp4")
        a = "yes" if score <= 1 else "no"
        b = "yes" if score >= 1 else "no "
        rows.append(f"{stem},{ph.clip_score}.0,{a},{b},\"{'white lung' if score == 3 else ''}\"")
    (root / "covid-blues" / "severity.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture(autouse=True)
def _own_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    from scoring.core.training import caches

    monkeypatch.setattr(caches, "CACHE_ROOT", tmp_path_factory.getbasetemp() / "cache")


def test_train_eval_score(tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "tiny.pt"
    rc = cli.main(["train", "--data", str(tiny_data), "--out", str(out), "--cv-seeds", "0", "--folds", "2",
                   "--clip-c", "1", "--version", "tiny-test"])
    assert rc == 0 and out.exists()
    import torch

    st = torch.load(out, weights_only=True)
    meta = st["meta"]
    assert meta["version"] == "tiny-test" and len(meta["training_patients"]) == 4
    assert meta["cv"]["n_patients"] == 4 and "accuracy" in meta["cv"]
    assert len(meta["backbone_sha256"]) == 64 and meta["command"].startswith("python -m scoring.core.cli train")
    assert meta["domain_check"] is None and "domain" not in st  # 8 clips are too few for it

    capsys.readouterr()
    assert cli.eval_main(["--weights", str(out), "--data", str(tiny_data / "covid-blues"), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rep["n"] == 8 and rep["model"] == "tiny-test" and 0 <= rep["accuracy"] <= 1
    assert 0 <= rep["ece"] <= 1 and 0 <= rep["brier"] <= 2  # calibration of the clip probabilities
    assert rep["patients_seen_in_training"] == 4

    files = sorted(str(p) for p in (tiny_data / "covid-blues" / "lus_videos").glob("*.mp4"))[:2]
    assert cli.score_main([*files, "--weights", str(out), "--json"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    assert len(lines) == 2
    for row, f in zip(lines, files, strict=True):
        assert row["file"] == f and row["model"] == "tiny-test" and row["domain"] is None
        assert row["frames"] == len(row["frame_scores"]) == len(row["frame_probs"]) == 8
        assert row["clip_score"] in (0, 1, 2, 3) and np.isclose(sum(row["clip_probs"]), 1, atol=1e-4)
        assert set(row["findings"]) >= {"a_lines", "b_lines"}
    # a broken file is reported, not fatal for the others
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    assert cli.score_main([str(bad), files[0], "--weights", str(out), "--json"]) == 1
    lines = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    assert "error" in lines[0] and lines[1]["clip_score"] in (0, 1, 2, 3)


def test_usage() -> None:
    assert cli.main([]) == 2


@pytest.mark.parametrize("arch", ["reg-stn", "cascade"])
def test_score_and_eval_read_the_shipped_networks(arch: str, tiny_data: Path, capsys: pytest.CaptureFixture[str]
                                                  ) -> None:
    from scoring.core.training.nets_run import WEIGHTS_DIR

    weights = str(WEIGHTS_DIR / f"{arch}.pt")
    clip = tiny_data / "covid-blues" / "lus_videos" / "patient_1_R1.mp4"
    assert cli.main(["score", str(clip), "--weights", weights, "--json"]) == 0
    row = json.loads(capsys.readouterr().out.strip())
    assert row["model"] == {"reg-stn": "lusweb-regstn112-v2", "cascade": "lusweb-cascade112-v1"}[arch]
    assert row["frames"] == 8
    assert row["clip_score"] == int(np.argmax(row["clip_probs"])) and abs(sum(row["clip_probs"]) - 1) < 1e-4
    assert cli.main(["eval", "--weights", weights, "--data", str(tiny_data / "covid-blues"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["n"] == 8 and report["model"] == row["model"] and sum(map(sum, report["confusion"])) == 8


def test_the_product_scorer_refuses_a_network_file_by_name() -> None:
    from scoring.core.inference.scorer import load_bundle
    from scoring.core.training.nets_run import WEIGHTS_DIR

    with pytest.raises(ValueError, match="not a scorer weights file .* but lusweb-net-1"):
        load_bundle(WEIGHTS_DIR / "mcrfnet.pt")


def test_the_usaugment_experiment_compares_on_the_same_folds(tiny_data: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    from scoring.core.training import caches

    store = caches.CACHE_ROOT / "features-aug"
    before = len(list(store.glob("*.npy"))) if store.is_dir() else 0
    out = tmp_path / "usaugment.json"
    rc = cli.main(["experiment", "usaugment", "--data", str(tiny_data), "--copies", "1", "--cv-seeds", "0",
                   "--folds", "2", "--json", str(out)])
    assert rc == 0
    result = json.loads(out.read_text())
    assert result["direction"] == "usaugment" and result["copies"] == 1
    assert set(result["cv"]) == {"baseline", "usaugment"}
    assert result["cv"]["baseline"]["n_clips"] == result["cv"]["usaugment"]["n_clips"] == 8
    s = result["screening"]
    assert s["passes"] == (s["challenger_accuracy"] > s["baseline_accuracy"])
    assert s["baseline_accuracy"] == result["cv"]["baseline"]["accuracy"]["mean"]
    assert len(list(store.glob("*.npy"))) == before + 8  # one copy of each clip
    printed = capsys.readouterr().out
    assert "baseline: accuracy" in printed and "screening: mean accuracy" in printed


def test_the_experiment_refuses_no_copies(tiny_data: Path) -> None:
    with pytest.raises(SystemExit, match="--copies"):
        cli.main(["experiment", "usaugment", "--data", str(tiny_data), "--copies", "0"])
    with pytest.raises(SystemExit, match="--ssl-steps: at least one pretraining step"):
        cli.main(["experiment", "ssl", "--data", str(tiny_data), "--ssl-steps", "0"])


def test_the_masks_experiment_replaces_the_descriptor_of_every_clip(tiny_data: Path, tmp_path: Path) -> None:
    from scoring.core.training import caches

    store = caches.CACHE_ROOT / "features-aug"
    before = len(list(store.glob("*.npy"))) if store.is_dir() else 0
    out = tmp_path / "masks.json"
    assert cli.main(["experiment", "masks", "--data", str(tiny_data), "--cv-seeds", "0", "--folds", "2",
                     "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["direction"] == "masks" and result["copies"] == 0
    assert set(result["cv"]) == {"baseline", "masks"} and result["cv"]["masks"]["n_clips"] == 8
    assert len(list(store.glob("*.npy"))) == before + 8  # one masked descriptor per clip


def test_the_ssl_experiment_pretrains_on_pocus_videos_only(tiny_data: Path, tmp_path: Path) -> None:
    root = tmp_path / "data"
    (root / "pocus" / "pocus_videos" / "convex").mkdir(parents=True)
    (root / "covid-blues").symlink_to(tiny_data / "covid-blues")
    rows = ["Filename,Lung Severity Score,Patient ID / Name"]
    for i in range(3):
        write_mp4(phantom_cohort_clip(i, seed=10 + i, n_frames=6, rows=96, columns=96),
                  root / "pocus" / "pocus_videos" / "convex" / f"video_{i}.mp4")
        rows.append(f"video_{i},,p{i}")
    (root / "pocus" / "dataset_metadata.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "ssl.json"
    assert cli.main(["experiment", "ssl", "--data", str(root), "--cv-seeds", "0", "--folds", "2", "--ssl-steps", "2",
                     "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["direction"] == "ssl" and result["ssl_steps"] == 2
    assert set(result["cv"]) == {"baseline", "ssl"} and result["cv"]["ssl"]["n_clips"] == 8

    (root / "pocus" / "dataset_metadata.csv").write_text("Filename,Lung Severity Score\n")
    with pytest.raises(SystemExit, match="experiment ssl: no POCUS videos"):
        cli.main(["experiment", "ssl", "--data", str(root), "--cv-seeds", "0", "--folds", "2"])
