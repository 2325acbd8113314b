"""The shipped architectures' weights, cards and README table agree, figure for figure."""
from __future__ import annotations

from pathlib import Path

import torch

from scoring.core.training.nets_run import WEIGHTS_DIR, net_card

ROOT = Path(__file__).resolve().parents[4]
SHIPPED = {"mcrfnet.pt", "reg-stn.pt", "cascade.pt"}


def _metas() -> dict[Path, dict]:  # type: ignore[type-arg]
    return {p: torch.load(p, map_location="cpu", weights_only=True)["meta"] for p in sorted(WEIGHTS_DIR.glob("*.pt"))}


def test_every_architecture_ships_with_three_fold_seeds_of_cv() -> None:
    metas = _metas()
    assert {p.name for p in metas} == SHIPPED
    for path, meta in metas.items():
        cv = meta["cv"]
        assert cv["seeds"] == [0, 1, 2] and cv["k"] == 5 and cv["n_clips"] == 235 and cv["n_patients"] == 42, path
        assert len(cv["accuracy"]["per_seed"]) == 3, path
        assert meta["command"].startswith("python manage.py lus_train --arch "), path


def test_the_cards_are_the_weights_metadata() -> None:
    for path, meta in _metas().items():
        assert path.with_suffix(".md").read_text(encoding="utf-8") == net_card(meta, path), path


def test_the_readme_table_shows_each_architectures_cv() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for path, meta in _metas().items():
        rows = [line for line in readme.splitlines() if line.startswith("|") and f" {meta['version']} " in line]
        assert len(rows) == 1, (path.name, rows)
        cells = [c.strip() for c in rows[0].strip("|").split("|")]
        cv = meta["cv"]
        figures = [f"{cv[key]['mean']:.3f} ± {cv[key]['sd']:.3f}" for key in ("accuracy", "within1", "spearman", "qwk")]
        assert cells[2:6] == figures, (path.name, cells)
