"""``GET /clips/<id>/strip.png``: a clip's frames stacked in one PNG for the review mode's player."""
from __future__ import annotations

import hashlib
import io
from typing import Any

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from patients.imaging.core.phantoms import PhantomSpec, render_phantom, write_dicom
from patients.imaging.ingest import clip_ingest
from patients.imaging.models import ZoneClip
from patients.imaging.selectors import strip_indices
from patients.records.models import Exam
from patients.studies.models import Role
from tests.factories import ExamFactory, PatientFactory, StudyFactory, members_by_role

pytestmark = pytest.mark.django_db


def _clip(exam: Exam, zone: str, frames: np.ndarray, fps: float | None) -> ZoneClip:
    """A clip row with the given decoded frames (the stored file itself is not needed here)."""
    digest = hashlib.sha256(frames.tobytes() + zone.encode()).hexdigest()
    clip = ZoneClip(exam=exam, zone=zone, file=f"clips/x/{digest}.npz", sha256=digest, size_bytes=1, format="npz",
                    frame_count=frames.shape[0], fps=fps, rows=frames.shape[1], columns=frames.shape[2],
                    deidentified=True)
    buf = io.BytesIO()
    np.savez_compressed(buf, frames=frames)
    clip.frames.save("frames.npz", ContentFile(buf.getvalue()), save=False)
    clip.save()
    return clip


@pytest.fixture
def world(db: Any) -> dict[str, Any]:
    study = StudyFactory(protocol="12-zone", deidentify=False)
    users = members_by_role(study, "strip-{role}")
    return {"study": study, "users": users, "exam": ExamFactory(patient=PatientFactory(study=study))}


def _get(client: Any, user: Any, clip: ZoneClip) -> Any:
    client.force_login(user)
    return client.get(f"/clips/{clip.pk}/strip.png")


def _strip(response: Any) -> np.ndarray:
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"] == "image/png"
    return np.asarray(Image.open(io.BytesIO(response.content)))


def test_strip_indices_are_spread_evenly() -> None:
    assert strip_indices(7) == list(range(7))
    assert strip_indices(100) == list(range(100))
    picked = strip_indices(250)
    assert len(picked) == 100 and picked[0] == 0 and picked[-1] == 247
    assert set(np.diff(picked)) <= {2, 3}  # no gap bigger than the average step rounded up


def test_long_clip_is_sampled_to_100_frames_and_downscaled(world: dict[str, Any], client: Any) -> None:
    # Frame i is filled with the value i, so the strip says which frames it took.
    frames = np.broadcast_to(np.arange(250, dtype=np.uint8)[:, None, None], (250, 300, 512)).copy()
    clip = _clip(world["exam"], "R1", frames, fps=50.0)
    response = _get(client, world["users"][Role.CLINICIAN], clip)
    strip = _strip(response)
    height = round(300 * 256 / 512)
    assert (response["X-Frame-Count"], response["X-Frame-Width"], response["X-Frame-Height"]) == ("100", "256",
                                                                                                 str(height))
    assert response["X-Frame-Fps"] == "50" and response["X-Clip-Frame-Count"] == "250"
    assert strip.shape == (100 * height, 256)
    cut = strip.reshape(100, height, 256)
    assert [int(f[0, 0]) for f in cut] == strip_indices(250)
    assert all((f == f[0, 0]).all() for f in cut)
    assert response["Cache-Control"] == "private, max-age=3600"


def test_short_narrow_clip_keeps_every_frame_and_its_size(world: dict[str, Any], client: Any) -> None:
    frames = np.random.default_rng(1).integers(0, 255, (7, 60, 90), dtype=np.uint8)
    clip = _clip(world["exam"], "R2", frames, fps=None)
    response = _get(client, world["users"][Role.RESEARCHER], clip)  # de-identified: researchers see it whole
    assert np.array_equal(_strip(response), frames.reshape(7 * 60, 90))
    assert (response["X-Frame-Count"], response["X-Frame-Height"], response["X-Frame-Fps"]) == ("7", "60", "25")


def test_tall_frames_keep_their_aspect(world: dict[str, Any], client: Any) -> None:
    frames = np.zeros((3, 640, 480), np.uint8)
    clip = _clip(world["exam"], "R3", frames, fps=30.0)
    response = _get(client, world["users"][Role.STUDY_ADMIN], clip)
    assert _strip(response).shape == (3 * 341, 256) and response["X-Frame-Height"] == "341"


def _kept_as_sent(world: dict[str, Any], data: bytes, name: str) -> ZoneClip:
    clip = clip_ingest(exam=world["exam"], upload=SimpleUploadedFile(name, data), zone="L1",
                       by=world["users"][Role.CLINICIAN], filename=name).clip
    assert not clip.deidentified
    return clip


def test_researchers_get_the_sector_masked_frames(world: dict[str, Any], client: Any) -> None:
    phantom = render_phantom(PhantomSpec(n_frames=12, seed=3, burned_in_text=True))
    buf = io.BytesIO()
    write_dicom(phantom, buf, patient_name="Doe^John", patient_id="HN-1")
    clip = _kept_as_sent(world, buf.getvalue(), "Doe.dcm")
    shape = (12, phantom.frames.shape[1], phantom.frames.shape[2])
    clinician = _strip(_get(client, world["users"][Role.CLINICIAN], clip)).reshape(shape)
    researcher = _strip(_get(client, world["users"][Role.RESEARCHER], clip)).reshape(shape)
    sector, text = phantom.sector_mask, phantom.text_mask
    assert clinician[:, text].max() > 0 and researcher[:, text].max() == 0
    assert np.array_equal(researcher[:, sector], clinician[:, sector])
    assert np.array_equal(clinician, clip.load_frames())


def test_frames_without_a_sector_are_withheld_from_researchers(world: dict[str, Any], client: Any) -> None:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(40, 255, (96, 96), dtype=np.uint8)).save(buf, format="PNG")
    clip = _kept_as_sent(world, buf.getvalue(), "still.png")
    response = _get(client, world["users"][Role.RESEARCHER], clip)
    assert response.status_code == 403 and b"no ultrasound sector was found" in response.content
    assert _get(client, world["users"][Role.CLINICIAN], clip).status_code == 200


def test_outsiders_and_bad_ids_get_404(world: dict[str, Any], client: Any) -> None:
    clip = _clip(world["exam"], "R4", np.zeros((2, 8, 8), np.uint8), fps=None)
    other = StudyFactory(protocol="12-zone")
    outsider = members_by_role(other, "outside-{role}")[Role.STUDY_ADMIN]
    assert _get(client, outsider, clip).status_code == 404
    client.force_login(world["users"][Role.CLINICIAN])
    assert client.get(f"/clips/{clip.pk + 1000}/strip.png").status_code == 404
    assert client.get("/clips/abc/strip.png").status_code == 404
    client.logout()
    assert client.get(f"/clips/{clip.pk}/strip.png").status_code == 302  # to the login page
