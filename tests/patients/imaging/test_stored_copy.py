"""The stored de-identified copy is compressed losslessly (JPEG-LS), so a video upload no longer
grows 50-70x on disk, and a real DICOM client (dcmtk) reads it back to the same frames."""
from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from patients.imaging.core import deid
from patients.imaging.core.phantoms import phantom_cohort_clip, write_mp4
from patients.imaging.core.reader import read_clip
from patients.imaging.ingest import clip_ingest
from patients.imaging.models import ZoneClip
from patients.studies.models import Membership, Role
from tests.conftest import require
from tests.factories import ExamFactory, PatientFactory, StudyFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def ingest() -> Any:
    study = StudyFactory(protocol="12-zone", deidentify=True)
    user = UserFactory()
    Membership.objects.create(study=study, user=user, role=Role.CLINICIAN)
    exam = ExamFactory(patient=PatientFactory(study=study))
    zones = iter(exam.zone_codes)

    def run(data: bytes, name: str) -> tuple[ZoneClip, bytes]:
        clip = clip_ingest(exam=exam, upload=SimpleUploadedFile(name, data), zone=next(zones), by=user,
                           filename=name).clip
        with clip.file.open("rb") as fh:
            return clip, fh.read()

    return run


def _sizes(clip: ZoneClip, upload: bytes, stored: bytes) -> dict[str, float]:
    frames = clip.load_frames()
    assert np.array_equal(read_clip(stored).frames, frames)  # lossless: the stored copy is the frames
    ds = pydicom.dcmread(io.BytesIO(stored), stop_before_pixels=True)
    assert ds.file_meta.TransferSyntaxUID == deid.STORED_SYNTAX
    return {"upload": len(upload), "stored": len(stored), "uncompressed": frames.nbytes,
            "stored_per_upload": round(len(stored) / len(upload), 2),
            "stored_per_uncompressed": round(len(stored) / frames.nbytes, 3)}


def _record(name: str, figures: object) -> None:
    out = Path(os.environ.get("LUSWEB_TEST_OUTPUT", tempfile.gettempdir())) / "stored-size"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(figures, indent=1))


def test_a_generated_video_is_stored_within_a_small_factor(ingest: Any) -> None:
    buf = io.BytesIO()
    write_mp4(phantom_cohort_clip(1, seed=2, n_frames=60, rows=480, columns=640, burned_in_text=True), buf)
    clip, stored = ingest(buf.getvalue(), "clip.mp4")
    figures = _sizes(clip, buf.getvalue(), stored)
    _record("phantom-mp4", figures)
    # Measured 7.8-8.0x (uncompressed: 18x): H.264's inter-frame compression is lossy, a lossless
    # intra-frame copy cannot match it; what is honest is "well under the uncompressed size".
    assert figures["stored_per_upload"] <= 10 and figures["stored_per_uncompressed"] <= 0.5, figures


def test_real_lumify_clips_are_stored_at_a_third_of_their_uncompressed_size(ingest: Any, shared_data: Path) -> None:
    files = sorted((shared_data / "covid-blues" / "lus_videos").glob("*.mp4"))[:6]
    figures = {}
    for path in files:
        data = path.read_bytes()
        clip, stored = ingest(data, path.name)
        figures[path.name] = _sizes(clip, data, stored)
    _record("covid-blues", figures)
    # Measured on 12 clips: 12-18x the upload (uncompressed: 52-67x), 0.19-0.35 of the frames.
    for name, sizes in figures.items():
        assert sizes["stored_per_upload"] <= 25 and sizes["stored_per_uncompressed"] <= 0.4, (name, sizes)


def test_a_gif_is_stored_no_larger_than_it_came(ingest: Any, shared_data: Path) -> None:
    path = shared_data / "pocus" / "pocus_videos" / "convex" / "Cov-Atlas+(44).gif"
    require(path.is_file(), f"{path} is missing")
    clip, stored = ingest(path.read_bytes(), path.name)
    figures = _sizes(clip, path.read_bytes(), stored)
    _record("gif", figures)
    assert figures["stored_per_upload"] <= 1.0, figures  # measured 0.6x


def test_dcmtk_reads_the_stored_copy(ingest: Any, tmp_path: Path) -> None:
    require(shutil.which("dcmdjpls") is not None and shutil.which("dcmdump") is not None,
            "dcmtk (dcmdjpls, dcmdump) is not installed")
    buf = io.BytesIO()
    write_mp4(phantom_cohort_clip(2, seed=5, n_frames=8, rows=240, columns=320, burned_in_text=True), buf)
    clip, stored = ingest(buf.getvalue(), "clip.mp4")
    (tmp_path / "stored.dcm").write_bytes(stored)
    dump = subprocess.run(["dcmdump", "+P", "0002,0010", "+P", "0028,0008", str(tmp_path / "stored.dcm")],
                          capture_output=True, text=True, check=True).stdout
    assert "JPEGLSLossless" in dump and "[8]" in dump, dump
    subprocess.run(["dcmdjpls", str(tmp_path / "stored.dcm"), str(tmp_path / "plain.dcm")], check=True,
                   capture_output=True)
    plain = pydicom.dcmread(tmp_path / "plain.dcm")
    assert not plain.file_meta.TransferSyntaxUID.is_compressed
    frames = np.frombuffer(plain.PixelData, np.uint8).reshape(8, 240, 320)
    assert np.array_equal(frames, clip.load_frames())
