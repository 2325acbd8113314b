from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from tests.patients.readings.ward import Ward, make_ward


def png_bytes(seed: int = 0, size: tuple[int, int] = (64, 80)) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, size=size, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def png_upload() -> Callable[..., SimpleUploadedFile]:
    def make(seed: int = 0, name: str = "zone.png") -> SimpleUploadedFile:
        return SimpleUploadedFile(name, png_bytes(seed), content_type="image/png")

    return make


def stored_files() -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


@pytest.fixture
def ward(db: object) -> Ward:
    """A 12-zone exam read by the AI, with a member per role (``tests.patients.readings.ward``)."""
    return make_ward()
