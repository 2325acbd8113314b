"""Ingest under the decoding budget (``LUSWEB_MAX_*``): every hostile file is refused with the words
of the limit and leaves no row, no stored file and no temporary file; the settings reach the
reader; a clip at the budget ingests in a process that stays under the 1.5 GB bound."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import override_settings
from rest_framework.test import APIClient

from patients.imaging.core.phantoms import phantom_cohort_clip
from patients.imaging.ingest import IngestError, clip_ingest
from patients.imaging.models import ZoneClip
from patients.imaging.process import clip_process
from patients.records.models import Exam
from patients.studies.models import Membership, Role
from tests.conftest import ROOT, require
from tests.factories import ExamFactory, PatientFactory, StudyFactory, UserFactory
from tests.hostile import HOSTILE
from tests.patients.conftest import stored_files
from tests.patients.imaging.core.reader.builders import mp4_bytes


@pytest.fixture
def spool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private temporary folder for this test's spooled uploads, so "no temporary file left"
    is checkable on a machine where other processes use the system one."""
    folder = tmp_path / "spool"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def _member(deidentify: bool = True) -> tuple[Exam, Any]:
    study = StudyFactory(protocol="12-zone", deidentify=deidentify)
    user = UserFactory()
    Membership.objects.create(study=study, user=user, role=Role.CLINICIAN)
    return ExamFactory(patient=PatientFactory(study=study)), user


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_file_is_refused_and_leaves_nothing(name: str, hostile_file: Callable[[str], Path],
                                                     spool: Path) -> None:
    hostile = HOSTILE[name]
    exam, user = _member()
    with hostile_file(name).open("rb") as fh, pytest.raises(IngestError) as info:
        clip_ingest(exam=exam, upload=fh, zone="R1", by=user, filename=hostile.filename)
    assert info.value.code == hostile.code and info.value.status == 400
    assert hostile.setting is None or hostile.setting in info.value.message
    assert ZoneClip.objects.count() == 0 and stored_files() == []
    assert list(spool.iterdir()) == []


@pytest.mark.django_db
def test_the_api_shows_a_budget_refusal_as_the_failed_clip_s_error(
        api_for: Callable[..., APIClient], hostile_file: Callable[[str], Path], spool: Path) -> None:
    """The request accepts the upload (202); the worker's check refuses it with the words and code
    a 400 would have carried, and removes its files."""
    exam, user = _member()
    api = api_for(user)
    data = hostile_file("gif_1500_frames_1000sq").read_bytes()
    response = api.post(f"/api/v1/exams/{exam.pk}/clips/",
                        {"zone": "R1", "file": SimpleUploadedFile("a.gif", data)}, format="multipart")
    assert response.status_code == 202 and response.data["status"] == "pending"
    clip_process(clip_id=response.data["id"])
    failed = api.get(response["Location"]).data
    assert (failed["status"], failed["code"], failed["error"]) == (
        "failed", "decoded_too_large",
        "the clip would decode to 1,430.5 MB (1,500 frames of 1000 x 1000), over the limit of 256 MB of "
        "decoded frames (LUSWEB_MAX_DECODED_MB)")
    assert ZoneClip.objects.count() == 0 and stored_files() == [] and list(spool.iterdir()) == []


@pytest.mark.django_db
@pytest.mark.parametrize("overrides, code, words", [
    ({"MAX_FRAMES": 11}, "too_many_frames", "12 frames (declared in its header), over the limit of 11 frames "
                                            "(LUSWEB_MAX_FRAMES)"),
    ({"MAX_PIXELS_PER_FRAME": 1000}, "frame_too_large", "80 x 64 pixels x 3 samples = 15,360 samples, over the "
                                                        "limit of 1,000 samples per frame (LUSWEB_MAX_PIXELS_PER_FRAME)"),
])
def test_the_settings_set_the_budget(overrides: dict[str, int], code: str, words: str, spool: Path) -> None:
    exam, user = _member(deidentify=False)
    with override_settings(**overrides), pytest.raises(IngestError) as info:
        clip_ingest(exam=exam, upload=SimpleUploadedFile("a.mp4", mp4_bytes(12)), zone="R1", by=user)
    assert info.value.code == code and words in info.value.message
    assert ZoneClip.objects.count() == 0 and stored_files() == [] and list(spool.iterdir()) == []
    # Within the same settings' defaults the clip is stored.
    clip = clip_ingest(exam=exam, upload=SimpleUploadedFile("a.mp4", mp4_bytes(12)), zone="R1", by=user).clip
    assert clip.frame_count == 12


# --- the ingesting process's memory ---------------------------------------------------------------

_INGEST_CHILD = """
import json, sys
import django
django.setup()
from django.contrib.auth import get_user_model
from patients.imaging.ingest import IngestError, clip_ingest
from patients.records.models import Exam
exam, user = Exam.objects.get(pk=int(sys.argv[2])), get_user_model().objects.get(pk=int(sys.argv[3]))
try:
    with open(sys.argv[1], "rb") as fh:
        clip = clip_ingest(exam=exam, upload=fh, zone=sys.argv[5], by=user, filename="clip" + sys.argv[4]).clip
    result = {"frames": clip.frame_count, "stored": clip.file.size, "cache": clip.frames.size}
except IngestError as exc:
    result = {"code": exc.code, "message": exc.message}
result["peak_mb"] = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")) / 1024
print(json.dumps(result))
"""


@pytest.fixture
def ingest_in_a_process(settings: Any) -> Iterator[Callable[..., dict[str, Any]]]:
    """Ingest a file in a fresh process on the test database (committed rows: transactional test)."""
    require(connection.vendor == "postgresql", "the ingesting process needs the PostgreSQL test database")
    exam, user = _member()
    db = settings.DATABASES["default"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LUSWEB_")}
    env.update({
        "DJANGO_SETTINGS_MODULE": "lusweb.settings.test", "LUSWEB_MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "LUSWEB_DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
    })

    def run(path: Path, zone: str = "R1") -> dict[str, Any]:
        out = subprocess.run([sys.executable, "-c", _INGEST_CHILD, str(path), str(exam.pk), str(user.pk), path.suffix,
                              zone],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr[-3000:]
        return dict(json.loads(out.stdout.strip().splitlines()[-1]))

    yield run


def _write_clip_at_budget(path: Path, *, frames: int, side: int) -> None:
    """A phantom clip (sector, speckle and burned-in text, so de-identification redacts) of
    ``frames`` frames of ``side`` x ``side``: 40 rendered frames played back and forth."""
    loop = phantom_cohort_clip(2, seed=4, n_frames=40, rows=side, columns=side, burned_in_text=True).frames
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = side, side, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "20"}
        for i in range(frames):
            k = i % 78
            grey = loop[k if k < 40 else 78 - k]
            frame = av.VideoFrame.from_ndarray(np.repeat(grey[:, :, None], 3, axis=2), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame.reformat(format="yuv420p")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_ingest_at_the_budget_stays_under_the_memory_bound(ingest_in_a_process: Callable[..., dict[str, Any]],
                                                          hostile_file: Callable[[str], Path], tmp_path: Path) -> None:
    """The worst a clip can cost: one that decodes to the whole default budget (248 of 256 MB),
    de-identified (redacted, re-encoded, cached); and the hostile file that decodes the furthest
    before it is refused."""
    clip = tmp_path / "at-budget.mp4"
    _write_clip_at_budget(clip, frames=248, side=1024)
    stored = ingest_in_a_process(clip)
    refused = ingest_in_a_process(hostile_file("avi_1080p_declares_10_holds_300"), "R2")
    out = Path(os.environ.get("LUSWEB_TEST_OUTPUT", tempfile.gettempdir())) / "hostile-rss"
    out.mkdir(parents=True, exist_ok=True)
    (out / "ingest.json").write_text(json.dumps({"at_budget": stored, "avi_1080p": refused}, indent=1))
    assert stored["frames"] == 248 and stored["peak_mb"] < 1536, stored
    assert refused["code"] == "decoded_too_large" and refused["peak_mb"] < 1536, refused
    assert ZoneClip.objects.count() == 1
