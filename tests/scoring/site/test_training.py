"""A site model's weights file and its model version are written together or not at all."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from django.db import IntegrityError

from scoring.models import ModelVersion
from scoring.site.training import site_model_register
from tests.factories import StudyFactory

pytestmark = pytest.mark.django_db


def test_the_file_and_the_row_are_registered_together(settings: Any) -> None:
    study = StudyFactory()
    mv = site_model_register(state={"w": torch.ones(2)}, meta={"version": "site-s1-a"}, study=study)
    path = Path(settings.SITE_MODELS_DIR) / "site-s1-a.pt"
    assert mv.weights == str(path) and mv.study == study and mv.metadata == {"version": "site-s1-a"}
    assert torch.equal(torch.load(path, weights_only=True)["w"], torch.ones(2))
    assert sorted(p.name for p in path.parent.iterdir()) == ["site-s1-a.pt"]


def test_a_refused_row_leaves_no_file_and_the_existing_one_untouched(settings: Any) -> None:
    study = StudyFactory()
    site_model_register(state={"w": torch.ones(2)}, meta={"version": "site-s1-b"}, study=study)
    folder = Path(settings.SITE_MODELS_DIR)
    before = (folder / "site-s1-b.pt").read_bytes()
    with pytest.raises(IntegrityError):  # the version is taken
        site_model_register(state={"w": torch.zeros(3)}, meta={"version": "site-s1-b"}, study=study)
    assert (folder / "site-s1-b.pt").read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == ["site-s1-b.pt"]
    assert ModelVersion.objects.filter(version="site-s1-b").count() == 1


def test_a_failed_move_rolls_the_row_back(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(src: Any, dst: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("scoring.site.training.os.replace", refuse)
    with pytest.raises(OSError, match="No space left"):
        site_model_register(state={"w": torch.ones(2)}, meta={"version": "site-s1-c"}, study=StudyFactory())
    assert not ModelVersion.objects.filter(version="site-s1-c").exists()
    assert list(Path(settings.SITE_MODELS_DIR).iterdir()) == []
