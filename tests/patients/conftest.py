from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


@dataclass
class Uploaded:
    """An upload through the API and the worker's check of it.

    ``response``: the POST's answer (202 with the pending clip, or the at-once 200/4xx).
    ``clip``: ``GET /api/v1/clips/<id>/`` after the check ran (``None`` when refused at once).
    """

    response: Any
    clip: dict[str, Any] | None

    @property
    def ready(self) -> bool:
        return self.clip is not None and self.clip["status"] == "ready"


def upload_checked(api: Any, exam: Any, data: bytes, name: str, zone: str = "R1", **extra: Any) -> Uploaded:
    """POST a clip to ``exam`` as a client does, then run the ingest worker's check of it here
    (``patients.imaging.process.clip_process``, what the ``clip_process`` task runs) and read the
    clip back from its ``Location``."""
    from patients.imaging.process import clip_process

    response = api.post(f"/api/v1/exams/{exam.pk}/clips/", {"zone": zone, "file": SimpleUploadedFile(name, data),
                                                           **extra}, format="multipart")
    if response.status_code != 202:
        return Uploaded(response, None)
    assert response.data["status"] == "pending" and response.data["frame_count"] is None, response.data
    assert response["Location"].endswith(f"/api/v1/clips/{response.data['id']}/"), response["Location"]
    clip_process(clip_id=response.data["id"])
    detail = api.get(response["Location"])
    assert detail.status_code == 200, detail.content[:300]
    return Uploaded(response, detail.data)
