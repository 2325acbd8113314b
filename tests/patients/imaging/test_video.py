"""``GET /clips/<id>/video.mp4``: the clip viewer's one-request cine (H.264 MP4 made once from the
frame cache), its cache headers and byte ranges, the masked variant and its removal with the clip."""
from __future__ import annotations

import hashlib
import io
from typing import Any

import av
import numpy as np
import pytest
from django.core.files.base import ContentFile

from patients.imaging import video
from patients.imaging.core.phantoms import PhantomSpec, render_phantom
from patients.imaging.core.sector import find_sector
from patients.imaging.models import ZoneClip
from patients.imaging.ranged import byte_range
from patients.records.models import Exam
from patients.studies.models import Role
from tests.factories import ExamFactory, PatientFactory, StudyFactory, members_by_role

pytestmark = pytest.mark.django_db


def _clip(exam: Exam, zone: str, frames: np.ndarray, fps: float | None, *, deidentified: bool = True) -> ZoneClip:
    """A ready clip row with the given decoded frames (the viewer reads the frame cache only)."""
    digest = hashlib.sha256(frames.tobytes() + zone.encode()).hexdigest()
    clip = ZoneClip(exam=exam, zone=zone, file=f"clips/x/{digest}.npz", sha256=digest, size_bytes=1, format="npz",
                    frame_count=frames.shape[0], fps=fps, rows=frames.shape[1], columns=frames.shape[2],
                    deidentified=deidentified, folder=f"clips/v/{digest[:16]}")
    buf = io.BytesIO()
    np.savez_compressed(buf, frames=frames)
    clip.frames.save("frames.npz", ContentFile(buf.getvalue()), save=False)
    clip.save()
    return clip


def _decode(data: bytes) -> tuple[np.ndarray, list[float], str]:
    """The video's frames (grey, [T, H, W]), each frame's time in seconds, and its codec."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        frames, times = [], []
        for frame in container.decode(stream):
            frames.append(frame.to_ndarray(format="gray"))
            times.append(float(frame.pts * stream.time_base))
        return np.stack(frames), times, stream.codec_context.name


@pytest.fixture
def world(db: Any) -> dict[str, Any]:
    study = StudyFactory(protocol="12-zone", deidentify=False)
    users = members_by_role(study, "video-{role}")
    return {"study": study, "users": users, "exam": ExamFactory(patient=PatientFactory(study=study))}


def test_the_video_holds_every_frame_at_its_time(world: dict[str, Any], client: Any) -> None:
    frames = render_phantom(PhantomSpec(n_frames=30, rows=97, columns=131, seed=3, burned_in_text=False)).frames
    clip = _clip(world["exam"], "R1", frames, fps=12.5)
    client.force_login(world["users"][Role.CLINICIAN])
    response = client.get(f"/clips/{clip.pk}/video.mp4")
    assert response.status_code == 200 and response["Content-Type"] == "video/mp4"
    data = b"".join(response.streaming_content)
    assert int(response["Content-Length"]) == len(data)
    decoded, times, codec = _decode(data)
    assert codec == "h264"
    # Every frame, at i / fps (the page's frame index is floor(t * fps)), padded to even size.
    assert decoded.shape == (30, 98, 132)
    assert [int(np.floor(t * 12.5 + 1e-3)) for t in times] == list(range(30))
    # Visually lossless: the mean error is a fraction of a grey level, no pixel far off.
    error = np.abs(decoded[:, :97, :131].astype(int) - frames.astype(int))
    assert error.mean() < 1.5 and np.percentile(error, 99.9) < 16
    # The page starts playing before the whole file arrived: the index (moov) precedes the data (mdat).
    assert data.index(b"moov") < data.index(b"mdat")


def test_cache_headers_ranges_and_one_encoding(world: dict[str, Any], client: Any) -> None:
    frames = render_phantom(PhantomSpec(n_frames=20, rows=64, columns=64, seed=1, burned_in_text=False)).frames
    clip = _clip(world["exam"], "R2", frames, fps=None)
    client.force_login(world["users"][Role.CLINICIAN])
    first = client.get(f"/clips/{clip.pk}/video.mp4")
    whole = b"".join(first.streaming_content)
    assert first["Cache-Control"] == "private, max-age=3600"  # patient data: never a shared cache
    assert first["Accept-Ranges"] == "bytes" and first["ETag"].startswith('"') and first["Last-Modified"]
    stored = clip.frames.storage
    name = video.video_name(clip, "full")
    assert stored.exists(name)
    made_at = stored.get_modified_time(name)
    # A clip without a frame rate plays at the viewer's default rate.
    assert _decode(whole)[1][1] == pytest.approx(1 / 20.0)
    # Ranges, as a browser seeking asks for them.
    part = client.get(f"/clips/{clip.pk}/video.mp4", HTTP_RANGE="bytes=100-299")
    assert part.status_code == 206 and part.content == whole[100:300]
    assert part["Content-Range"] == f"bytes 100-299/{len(whole)}" and part["Content-Length"] == "200"
    tail = client.get(f"/clips/{clip.pk}/video.mp4", HTTP_RANGE="bytes=-50")
    assert tail.status_code == 206 and tail.content == whole[-50:]
    rest = client.get(f"/clips/{clip.pk}/video.mp4", HTTP_RANGE="bytes=0-")
    assert rest.status_code == 206 and rest.content == whole
    past = client.get(f"/clips/{clip.pk}/video.mp4", HTTP_RANGE=f"bytes={len(whole)}-")
    assert past.status_code == 416 and past["Content-Range"] == f"bytes */{len(whole)}"
    stale = client.get(f"/clips/{clip.pk}/video.mp4", HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE='"other"')
    assert stale.status_code == 200  # a copy of another version gets the whole file
    assert client.get(f"/clips/{clip.pk}/video.mp4", HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 304
    assert stored.get_modified_time(name) == made_at  # made once, served from storage since


def test_outsiders_get_404_and_researchers_a_masked_video(world: dict[str, Any], client: Any) -> None:
    phantom = render_phantom(PhantomSpec(n_frames=10, rows=128, columns=128, seed=2, burned_in_text=True))
    clip = _clip(world["exam"], "L1", phantom.frames, fps=25.0, deidentified=False)  # kept as sent
    sector = find_sector(phantom.frames).mask
    text = (phantom.frames[0] == 230) & ~sector
    assert text.any()
    client.force_login(world["users"][Role.CLINICIAN])
    seen = _decode(client.get(f"/clips/{clip.pk}/video.mp4").getvalue())[0][:, :128, :128]
    assert seen[0][text].mean() > 200  # clinicians see the clip as sent
    client.force_login(world["users"][Role.RESEARCHER])
    masked = _decode(client.get(f"/clips/{clip.pk}/video.mp4").getvalue())[0][:, :128, :128]
    assert masked[0][text].mean() < 8  # researchers do not see the burned-in text
    # The sector itself is the same image (within the codec's error, larger at the blacked-out edge).
    assert np.abs(masked[:, sector].astype(int) - phantom.frames[:, sector].astype(int)).mean() < 3
    other = members_by_role(StudyFactory(), "elsewhere-{role}")[Role.CLINICIAN]
    client.force_login(other)
    assert client.get(f"/clips/{clip.pk}/video.mp4").status_code == 404


def test_noise_without_a_sector_is_withheld_from_researchers(world: dict[str, Any], client: Any) -> None:
    noise = np.random.default_rng(0).integers(40, 255, (3, 64, 64), dtype=np.uint8)
    clip = _clip(world["exam"], "L2", noise, fps=10.0, deidentified=False)
    client.force_login(world["users"][Role.RESEARCHER])
    response = client.get(f"/clips/{clip.pk}/video.mp4")
    assert response.status_code == 403 and b"no ultrasound sector was found" in response.content
    assert not clip.frames.storage.exists(video.video_name(clip, "masked"))


def test_the_video_goes_with_the_clip(world: dict[str, Any], client: Any, django_capture_on_commit_callbacks: Any) -> None:
    frames = render_phantom(PhantomSpec(n_frames=5, rows=64, columns=64, seed=4, burned_in_text=False)).frames
    clip = _clip(world["exam"], "R3", frames, fps=10.0)
    client.force_login(world["users"][Role.CLINICIAN])
    assert client.get(f"/clips/{clip.pk}/video.mp4").status_code == 200
    name, storage = video.video_name(clip, "full"), clip.frames.storage
    assert storage.exists(name)
    with django_capture_on_commit_callbacks(execute=True):
        clip.delete()
    assert not storage.exists(name)


@pytest.mark.parametrize(("header", "expected"), [
    ("", None), ("bytes=0-", (0, 999)), ("bytes=10-19", (10, 19)), ("bytes=990-5000", (990, 999)),
    ("bytes=-100", (900, 999)), ("bytes=-5000", (0, 999)), ("bytes=1000-", "unsatisfiable"),
    ("bytes=20-10", "unsatisfiable"), ("bytes=-0", "unsatisfiable"), ("bytes=0-1,5-9", None), ("items=0-1", None),
    ("bytes=-", None),
])
def test_byte_range(header: str, expected: Any) -> None:
    assert byte_range(header, 1000) == expected
