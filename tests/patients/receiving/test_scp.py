"""Acceptance of the DICOM receiver: ``manage.py lus_dicom_scp`` as a real subprocess on the test
database, driven by dcmtk's ``echoscu`` and ``storescu`` as an ultrasound machine would.

* echoscu succeeds; an unknown calling AE title is rejected at association and nothing is stored;
* pydicom's ultrasound files and phantom DICOMs are stored (ready clips) and scored by the worker;
* 12 concurrent associations, one zone each of one study, lose nothing: 12 clips, one exam;
* an SR instance gets a failure status and stores nothing;
* an instance whose zone cannot be read waits in the study's inbox.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest
from django.conf import settings
from django.db import connection

from patients.imaging.models import ClipStatus, ZoneClip
from patients.imaging.process import clip_process
from patients.readings.models import ReadingSource, ZoneReading
from patients.receiving.models import InboxItem, InboxState
from patients.records.models import Exam
from scoring.models import ClipScore, ExamScore
from tests.conftest import ROOT, require
from tests.dicom3tools import dciodvfy
from tests.factories import PatientFactory, StudyFactory
from tests.patients.receiving.receiving_kit import (
    PYDICOM_US_FILES,
    TRANSFER_SYNTAXES,
    phantom,
    pydicom_us,
    structured_report,
    transcoded,
)
from tests.server import subprocess_env
from tests.worker import Worker, worker_env_fixture

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

worker_env = worker_env_fixture
STUDY_UID = "1.2.826.0.1.3680043.8.498.2001"
AET = "US01"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Receiver:
    """``manage.py lus_dicom_scp`` on a free local port, and dcmtk's tools pointed at it."""

    def __init__(self, log: Path) -> None:
        self.port = _free_port()
        self.log = log
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "lus_dicom_scp", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=ROOT, env=subprocess_env(), stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the receiver exited with {self.proc.returncode}; see {self.log}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"the receiver did not listen within {timeout:.0f} s; see {self.log}")

    def echoscu(self, aet: str = AET) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["echoscu", "-aet", aet, "-aec", "LUSWEB", "127.0.0.1", str(self.port)],
                              capture_output=True, text=True, timeout=60, check=False)

    def storescu_command(self, files: list[Path], aet: str = AET, log: str = "-v") -> list[str]:
        """storescu proposing the files' own transfer syntax (one for all of them), as a machine
        sending its JPEG, JPEG-LS ... clips does, rather than converting them."""
        syntaxes = {str(pydicom.dcmread(f, stop_before_pixels=True).file_meta.TransferSyntaxUID) for f in files}
        assert len(syntaxes) == 1, syntaxes
        return ["storescu", log, TRANSFER_SYNTAXES[syntaxes.pop()], "-aet", aet, "-aec", "LUSWEB", "127.0.0.1",
                str(self.port), *map(str, files)]

    def storescu(self, files: list[Path], aet: str = AET, log: str = "-v") -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.storescu_command(files, aet, log), capture_output=True, text=True, timeout=120,
                              check=False)

    def store_each(self, files: list[Path]) -> list[subprocess.CompletedProcess[str]]:
        return [self.storescu([f]) for f in files]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait(timeout=30)


@pytest.fixture
def receiver(transactional_db: Any) -> Iterator[Receiver]:
    require(connection.vendor == "postgresql", "the receiver process needs the PostgreSQL test database")
    require(bool(settings.REDIS_URL), "LUSWEB_REDIS_URL is not set: the receiver sends its clips to the worker")
    require(shutil.which("echoscu") is not None and shutil.which("storescu") is not None,
            "dcmtk's echoscu and storescu are not installed")
    out = Path(os.environ.get("LUSWEB_TEST_OUTPUT", tempfile.gettempdir()))
    out.mkdir(parents=True, exist_ok=True)
    scp = Receiver(out / "dicom-receiver.log")
    try:
        scp.wait_ready()
        yield scp
    finally:
        scp.stop()


@pytest.fixture
def study() -> Any:
    study = StudyFactory(dicom_calling_aets=[AET])
    PatientFactory(study=study, code="LUS-001", hospital_number="H001")
    return study


def _files(tmp_path: Path, named: dict[str, bytes]) -> list[Path]:
    paths = []
    for name, data in named.items():
        path = tmp_path / f"{name}.dcm"
        path.write_bytes(data)
        paths.append(path)
    return paths


def _wait(predicate: Callable[[], bool], timeout: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    tail = log.read_text()[-3000:] if log and log.exists() else ""
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{tail}")


def test_echo_succeeds_and_an_unknown_caller_is_rejected(receiver: Receiver, study: Any, tmp_path: Path) -> None:
    answer = receiver.echoscu()
    assert answer.returncode == 0, answer.stdout + answer.stderr
    refused = receiver.echoscu("STRANGER")
    assert refused.returncode != 0
    assert "Calling AE Title Not Recognized" in refused.stdout + refused.stderr
    files = _files(tmp_path, {"r1": phantom(patient_id="H001", zone="R1", study_uid=STUDY_UID)})
    stored = receiver.storescu(files, aet="STRANGER")
    assert stored.returncode != 0 and "Calling AE Title Not Recognized" in stored.stdout + stored.stderr
    assert not ZoneClip.all_objects.exists() and not InboxItem.objects.exists() and not Exam.objects.exists()


def test_ultrasound_files_are_stored_and_scored(receiver: Receiver, study: Any, tmp_path: Path,
                                                worker_env: Callable[..., Worker]) -> None:
    worker = worker_env()
    named = {name: pydicom_us(name, patient_id="H001", zone=zone, study_uid=STUDY_UID)
             for zone, name in zip(("R1", "R2", "R3"), PYDICOM_US_FILES, strict=True)}
    named["phantom"] = phantom(patient_id="H001", zone="L1", study_uid=STUDY_UID, frames=10)
    named["phantom-jpeg"] = phantom(patient_id="H001", zone="L2", study_uid=STUDY_UID, frames=10, seed=3, jpeg=True)
    for sent in receiver.store_each(_files(tmp_path, named)):
        assert sent.returncode == 0 and "Received Store Response (Success)" in sent.stdout + sent.stderr, \
            sent.stdout + sent.stderr
    exam = Exam.objects.get()
    assert exam.patient.hospital_number == "H001" and exam.study_instance_uid
    worker.wait_ready()
    _wait(lambda: ZoneClip.objects.filter(exam=exam).count() == 5, 240, "five ready clips", worker.log)
    assert sorted(ZoneClip.objects.values_list("zone", flat=True)) == ["L1", "L2", "R1", "R2", "R3"]
    assert set(ZoneClip.all_objects.values_list("status", flat=True)) == {ClipStatus.READY}
    assert set(ZoneClip.objects.values_list("study_instance_uid", flat=True)) == {exam.study_instance_uid}
    # Scoring starts with the first ready clip: the exam is scored when a job saw all five zones.
    _wait(lambda: any(ClipScore.objects.filter(job=e.job).count() == 5 for e in ExamScore.objects.filter(exam=exam)),
          300, "the exam to be scored", worker.log)
    job = next(e.job for e in ExamScore.objects.filter(exam=exam) if ClipScore.objects.filter(job=e.job).count() == 5)
    assert ExamScore.objects.get(job=job).coverage == pytest.approx(5 / 12, abs=1e-3)
    scores = ClipScore.objects.filter(job=job)
    assert sorted(scores.values_list("zone", flat=True)) == ["L1", "L2", "R1", "R2", "R3"]
    for s in scores:
        ai = ZoneReading.objects.filter(clip=s.clip, source=ReadingSource.AI).order_by("-created_at").first()
        assert ai is not None and ai.score == s.score and ai.rater_name == f"model:{job.model_version.version}"


def test_twelve_concurrent_associations_lose_nothing(receiver: Receiver, study: Any, tmp_path: Path,
                                                     worker_env: Callable[..., Worker]) -> None:
    zones = ["R1", "R2", "R3", "R4", "R5", "R6", "L1", "L2", "L3", "L4", "L5", "L6"]
    paths = _files(tmp_path, {z: phantom(patient_id="H001", zone=z, study_uid=STUDY_UID, seed=i)
                              for i, z in enumerate(zones)})
    procs = [subprocess.Popen(receiver.storescu_command([p]), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True) for p in paths]
    outputs = [proc.communicate(timeout=180)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * 12, "\n".join(outputs)
    exam = Exam.objects.get()
    assert sorted(ZoneClip.all_objects.filter(exam=exam).values_list("zone", flat=True)) == sorted(zones)
    worker = worker_env(LUSWEB_SCORING_ON_UPLOAD="0")
    worker.wait_ready()
    _wait(lambda: ZoneClip.objects.filter(exam=exam).count() == 12, 240, "twelve ready clips", worker.log)
    assert Exam.objects.count() == 1 and not InboxItem.objects.exists()


def test_an_sr_instance_gets_a_failure_status_and_stores_nothing(receiver: Receiver, study: Any,
                                                                 tmp_path: Path) -> None:
    sent = receiver.storescu(_files(tmp_path, {"sr": structured_report(patient_id="H001")}), log="-d")
    said = sent.stdout + sent.stderr
    status = next(line for line in said.splitlines() if "DIMSE Status" in line and "0x0000" not in line)
    assert "0x0122: Refused: SOP Class not supported" in status, said[-3000:]
    comment = next(line for line in said.splitlines() if "ErrorComment" in line)
    assert "Comprehensive SR Storage is not an image LUSWeb receives" in comment, comment
    assert not ZoneClip.all_objects.exists() and not InboxItem.objects.exists() and not Exam.objects.exists()


def test_an_unmapped_zone_lands_in_the_inbox(receiver: Receiver, study: Any, tmp_path: Path) -> None:
    sent = receiver.storescu(_files(tmp_path, {"nozone": phantom(patient_id="H001", zone="", study_uid=STUDY_UID)}))
    assert sent.returncode == 0, sent.stdout + sent.stderr
    item = InboxItem.objects.get()
    assert item.state == InboxState.WAITING and item.study == study and item.calling_aet == AET
    assert "names no zone" in item.reason and item.patient is not None and item.patient.code == "LUS-001"
    assert item.received_via == "dimse" and item.file and item.size_bytes > 0
    assert not ZoneClip.all_objects.exists()


def _sent_as(said: str) -> tuple[str, str]:
    """storescu's "Converting transfer syntax: X -> Y": the file's syntax and the one it was sent in."""
    line = next(line for line in said.splitlines() if "Converting transfer syntax:" in line)
    before, after = line.split("Converting transfer syntax:")[1].split("->")
    return before.strip(), after.strip()


def test_every_transfer_syntax_the_reader_decodes_is_received(receiver: Receiver, study: Any, tmp_path: Path) -> None:
    """One zone per transfer syntax, each proposed and sent as is; the worker's check (run here)
    decodes every one of them."""
    zones = dict(zip(TRANSFER_SYNTAXES, ["R1", "R2", "R3", "R4", "R5", "R6", "L1", "L2"], strict=True))
    named = {}
    for tsyntax, zone in zones.items():
        if tsyntax == "1.2.840.10008.1.2.4.50":  # JPEG baseline: written by the phantom writer
            named[zone] = phantom(patient_id="H001", zone=zone, study_uid=STUDY_UID, seed=5, jpeg=True)
        else:
            named[zone] = transcoded(phantom(patient_id="H001", zone=zone, study_uid=STUDY_UID, seed=5), tsyntax)
    for sent in receiver.store_each(_files(tmp_path, named)):
        said = sent.stdout + sent.stderr
        assert sent.returncode == 0 and "Received Store Response (Success)" in said, said
        before, after = _sent_as(said)
        assert after == before, said  # sent as stored, the retired big endian too
    clips = ZoneClip.all_objects.filter(exam__patient__study=study)
    assert sorted(clips.values_list("zone", flat=True)) == sorted(zones.values())
    for clip in clips:
        processed = clip_process(clip_id=clip.pk)
        assert processed is not None and processed.error is None, (clip.zone, processed and processed.error)
    assert ZoneClip.objects.filter(exam__patient__study=study).count() == len(zones)


def test_a_big_endian_instance_is_received_as_sent_and_stored_little_endian(receiver: Receiver, study: Any,
                                                                           tmp_path: Path) -> None:
    """The retired Explicit VR Big Endian, as an older scanner sends it (pydicom's GE LOGIQ 700
    image): accepted without conversion, and the clip's de-identified copy is stored explicit VR
    little endian with the same pixels, valid for dciodvfy. Before the fix the receiver did not
    accept big endian (storescu converted it), because de-identifying it failed."""
    data = pydicom_us("ExplVR_BigEnd.dcm", patient_id="H001", zone="R4", study_uid=STUDY_UID)
    sent = receiver.storescu(_files(tmp_path, {"bigend": data}))
    said = sent.stdout + sent.stderr
    assert sent.returncode == 0 and "Received Store Response (Success)" in said, said
    assert _sent_as(said) == ("Big Endian Explicit", "Big Endian Explicit"), said
    clip = ZoneClip.all_objects.get()
    processed = clip_process(clip_id=clip.pk)
    assert processed is not None and processed.error is None, processed and processed.error
    clip.refresh_from_db()
    assert clip.status == ClipStatus.READY and clip.zone == "R4" and clip.deidentified
    with clip.file.open("rb") as fh:
        stored = fh.read()
    (tmp_path / "stored.dcm").write_bytes(stored)
    verdict = dciodvfy(tmp_path / "stored.dcm")
    assert verdict.ok and verdict.iod == "USImage", str(verdict)
    ds, source = pydicom.dcmread(tmp_path / "stored.dcm"), pydicom.dcmread(tmp_path / "bigend.dcm")
    assert str(source.file_meta.TransferSyntaxUID) == "1.2.840.10008.1.2.2"
    assert str(ds.file_meta.TransferSyntaxUID) == "1.2.840.10008.1.2.1" and ds.PatientID != "H001"
    assert (ds.pixel_array == source.pixel_array).all() and ds.pixel_array.shape == (60, 80, 3)
