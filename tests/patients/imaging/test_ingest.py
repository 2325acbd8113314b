"""Ingest of real device files through the API (202, then the ingest worker's check), idempotent
re-upload, and bad input that is refused with a clear message: at once by the request (no row,
no file), or by the worker's check (a failed clip with the error, no file)."""
from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from pydicom.data import get_testdata_file
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from rest_framework.test import APIClient

from patients.imaging.models import ZoneClip
from patients.records.models import Exam
from patients.studies.models import Membership, Role
from tests.factories import ExamFactory, PatientFactory, StudyFactory, UserFactory
from tests.patients.conftest import png_bytes, stored_files, upload_checked

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(api_for: Callable[..., APIClient]) -> tuple[APIClient, Exam, Any]:
    # These tests pin the byte-for-byte path; de-identifying studies are covered in test_deid.py.
    study = StudyFactory(protocol="12-zone", deidentify=False)
    user = UserFactory()
    Membership.objects.create(study=study, user=user, role=Role.CLINICIAN)
    exam = ExamFactory(patient=PatientFactory(study=study))
    return api_for(user), exam, user


def _upload(api: APIClient, exam: Exam, data: bytes, name: str, zone: str = "R1", **extra: Any) -> Any:
    """The POST alone: what the request answers at once (202 pending, or a refusal)."""
    return api.post(f"/api/v1/exams/{exam.pk}/clips/", {"zone": zone, "file": SimpleUploadedFile(name, data), **extra},
                    format="multipart")


def _ready(api: APIClient, exam: Exam, data: bytes, name: str, zone: str = "R1", **extra: Any) -> dict[str, Any]:
    """Upload (202), let the ingest worker's check run, and return the ready clip as the API shows it."""
    up = upload_checked(api, exam, data, name, zone, **extra)
    assert up.response.status_code == 202 and up.ready, (up.response.data, up.clip)
    assert up.clip is not None
    return up.clip


def _dicom_bytes(ds: pydicom.Dataset) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


# --- real device files ---------------------------------------------------------------------


def test_sonosite_multiframe_jpeg_baseline(setup: tuple[APIClient, Exam, Any]) -> None:
    api, exam, _ = setup
    path = Path(get_testdata_file("examples_ybr_color.dcm"))
    raw = path.read_bytes()
    data = _ready(api, exam, raw, "sonosite.dcm")
    assert (data["frame_count"], data["rows"], data["columns"]) == (30, 240, 320)
    assert data["manufacturer"] == "SonoSite, Inc."
    assert data["zone"] == "R1" and data["format"] == "dicom"
    import hashlib

    assert data["sha256"] == hashlib.sha256(raw).hexdigest()
    clip = ZoneClip.objects.get(pk=data["id"])
    with clip.file.open("rb") as fh:
        assert fh.read() == raw  # kept byte for byte
    frames = clip.load_frames()
    assert frames.shape == (30, 240, 320) and frames.dtype == np.uint8
    detail = api.get(f"/api/v1/clips/{clip.pk}/").data
    for key in ("id", "zone", "frame_count", "fps", "rows", "columns", "manufacturer", "sha256"):
        assert key in detail
    assert detail["page_url"] == f"/clips/{clip.pk}/"


@pytest.mark.parametrize("name, shape", [
    ("examples_rgb_color.dcm", (1, 240, 320)),
    ("examples_palette.dcm", (1, 350, 800)),
])
def test_other_vendor_files_decode_to_the_right_shape(setup: tuple[APIClient, Exam, Any], name: str,
                                                      shape: tuple[int, int, int]) -> None:
    api, exam, _ = setup
    ds = pydicom.dcmread(get_testdata_file(name))
    expected = (int(getattr(ds, "NumberOfFrames", 1) or 1), ds.Rows, ds.Columns)
    assert expected == shape
    data = _ready(api, exam, Path(get_testdata_file(name)).read_bytes(), name)
    assert (data["frame_count"], data["rows"], data["columns"]) == shape
    assert data["manufacturer"] == str(ds.get("Manufacturer", ""))


def test_reupload_is_idempotent(setup: tuple[APIClient, Exam, Any]) -> None:
    api, exam, _ = setup
    raw = png_bytes(3)
    first = _upload(api, exam, raw, "a.png")
    files = stored_files()
    while_checked = _upload(api, exam, raw, "a-again.png")  # the same bytes before the worker ran
    assert (first.status_code, while_checked.status_code) == (202, 200)
    assert while_checked.data["id"] == first.data["id"] and while_checked.data["status"] == "pending"
    assert "Location" not in while_checked
    assert stored_files() == files
    from patients.imaging.process import clip_process

    assert clip_process(clip_id=first.data["id"]) is not None
    files = stored_files()
    second = _upload(api, exam, raw, "a-again.png")
    assert second.status_code == 200 and second.data["id"] == first.data["id"] and second.data["status"] == "ready"
    assert ZoneClip.all_objects.count() == 1 and stored_files() == files


def test_replace_swaps_the_clip_once_the_new_one_is_ready(setup: tuple[APIClient, Exam, Any],
                                                          django_capture_on_commit_callbacks: Any) -> None:
    api, exam, _ = setup
    old = ZoneClip.objects.get(pk=_ready(api, exam, png_bytes(1), "a.png")["id"])
    old_path = Path(old.file.path)
    second = _upload(api, exam, png_bytes(2), "b.png", replace="true")
    assert second.status_code == 202
    assert ZoneClip.objects.get(exam=exam) == old  # the zone keeps its clip while the new one is checked
    from patients.imaging.process import clip_process

    with django_capture_on_commit_callbacks(execute=True):
        clip_process(clip_id=second.data["id"])
    assert ZoneClip.objects.filter(exam=exam).count() == 1
    assert ZoneClip.objects.get(exam=exam).sha256 == second.data["sha256"]
    assert not ZoneClip.all_objects.filter(pk=old.pk).exists() and not old_path.exists()


def test_exam_reports_missing_zones(setup: tuple[APIClient, Exam, Any]) -> None:
    api, exam, _ = setup
    _ready(api, exam, png_bytes(1), "a.png", zone="R1")
    _ready(api, exam, png_bytes(2), "b.png", zone="l3")
    assert exam.missing_zones() == ["R2", "R3", "R4", "R5", "R6", "L1", "L2", "L4", "L5", "L6"]
    assert api.get(f"/api/v1/exams/{exam.pk}/").data["missing_zones"] == exam.missing_zones()


# --- bad input -----------------------------------------------------------------------------


def _sr_dicom() -> bytes:
    ds = pydicom.Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.33"
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.33"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = "SR"
    ds.PatientName = "Report^Only"
    return _dicom_bytes(ds)


def _mono_dicom(frames: int, *, syntax: str = ExplicitVRLittleEndian, pixel: bytes | None = None,
                study_uid: str | None = None) -> bytes:
    ds = pydicom.Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.3.1"
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = syntax
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.Modality = "US"
    ds.Rows, ds.Columns = 16, 16
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.NumberOfFrames = frames
    if pixel is None:
        pixel = np.random.default_rng(0).integers(0, 255, (max(frames, 1), 16, 16), dtype=np.uint8).tobytes()
        pixel = pixel[: frames * 256]
    if syntax != ExplicitVRLittleEndian:
        from pydicom.encaps import encapsulate

        ds.PixelData = encapsulate([pixel or b"\x00" * 8])
        ds["PixelData"].VR = "OB"
        ds["PixelData"].is_undefined_length = True
    else:
        ds.PixelData = pixel
    return _dicom_bytes(ds)


def _mp4_bytes() -> bytes:
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for i in range(10):
            frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), i * 20, dtype=np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buf.getvalue()


# Refused by the request itself: 400 at once, nothing stored.
BAD: list[tuple[str, Callable[[], dict[str, Any]], int, str]] = [
    ("random bytes", lambda: {"data": bytes(range(256)) * 8, "name": "x.dcm"}, 400, r"not a recognised|unsupported|not a DICOM"),
    ("plain text", lambda: {"data": b"patient,score\n1,2\n", "name": "scores.csv"}, 400, r"not a recognised|unsupported"),
    ("empty file", lambda: {"data": b"", "name": "empty.dcm"}, 400, r"empty"),
    ("zone outside the protocol", lambda: {"data": png_bytes(6), "name": "a.png", "zone": "R7"}, 400,
     r"zone 'R7' is not part of the 12-zone protocol"),
    ("no zone", lambda: {"data": png_bytes(6), "name": "a.png", "zone": ""}, 400, r"zone"),
]

# Accepted by the request (the signature is right), refused by the worker's check: the clip is
# failed with the error and code a 400 would have carried, and no file is left.
BAD_CONTENT: list[tuple[str, Callable[[], dict[str, Any]], str, str]] = [
    ("truncated DICOM", lambda: {"data": Path(get_testdata_file("examples_ybr_color.dcm")).read_bytes()[:20000],
                                 "name": "cut.dcm"}, "truncated", r"truncated"),
    ("DICOM header only", lambda: {"data": Path(get_testdata_file("examples_ybr_color.dcm")).read_bytes()[:300],
                                   "name": "head.dcm"}, "truncated|no_pixel_data", r"truncated|no pixel data"),
    ("structured report", lambda: {"data": _sr_dicom(), "name": "report.dcm"}, "no_pixel_data", r"no pixel data"),
    ("zero frames", lambda: {"data": _mono_dicom(0), "name": "zero.dcm"}, "no_frames|no_pixel_data",
     r"no frames|zero frames|0 frames"),
    ("undecodable codec", lambda: {"data": _mono_dicom(1, syntax="1.2.840.10008.1.2.4.201", pixel=b"\x00\x01" * 50),
                                   "name": "htj2k.dcm"}, "undecodable_codec|corrupt", r"decod|codec|transfer syntax"),
    ("truncated MP4", lambda: {"data": _mp4_bytes()[:600], "name": "cut.mp4"}, "truncated|corrupt|no_frames",
     r"truncated|decod|no frames|corrupt"),
    ("corrupt PNG", lambda: {"data": png_bytes(5)[:60], "name": "cut.png"}, "truncated|corrupt", r"truncated|decod|corrupt"),
]


@pytest.mark.parametrize("case", BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_refused_and_leaves_nothing(setup: tuple[APIClient, Exam, Any], case: tuple[Any, ...]) -> None:
    api, exam, _ = setup
    _name, make, status, pattern = case
    spec = make()
    files_before = stored_files()
    response = _upload(api, exam, spec["data"], spec["name"], zone=spec.get("zone", "R1"))
    assert response.status_code == status, response.data
    assert re.search(pattern, response.data["error"], re.IGNORECASE), response.data["error"]
    assert ZoneClip.all_objects.count() == 0
    assert stored_files() == files_before


@pytest.mark.parametrize("case", BAD_CONTENT, ids=[b[0] for b in BAD_CONTENT])
def test_bad_content_fails_in_the_worker_and_leaves_no_file(setup: tuple[APIClient, Exam, Any],
                                                            case: tuple[Any, ...]) -> None:
    api, exam, _ = setup
    _name, make, codes, pattern = case
    spec = make()
    up = upload_checked(api, exam, spec["data"], spec["name"])
    assert up.response.status_code == 202 and up.clip is not None
    clip = up.clip
    assert clip["status"] == "failed" and re.fullmatch(codes, clip["code"]), clip
    assert re.search(pattern, clip["error"], re.IGNORECASE), clip["error"]
    assert (clip["frame_count"], clip["rows"], clip["columns"], clip["page_url"]) == (None, None, None, None)
    assert ZoneClip.objects.count() == 0 and stored_files() == []
    # The zone is free again: the next file for it is taken.
    assert _upload(api, exam, png_bytes(11), "next.png").status_code == 202


def test_missing_file_field(setup: tuple[APIClient, Exam, Any]) -> None:
    api, exam, _ = setup
    response = api.post(f"/api/v1/exams/{exam.pk}/clips/", {"zone": "R1"}, format="multipart")
    assert response.status_code == 400 and "file" in response.data["error"]
    assert ZoneClip.all_objects.count() == 0 and stored_files() == []


@override_settings(MAX_UPLOAD_MB=1)
def test_file_over_the_upload_limit(setup: tuple[APIClient, Exam, Any]) -> None:
    api, exam, _ = setup
    big = png_bytes(1) + b"\x00" * (1024 * 1024 + 10)
    response = _upload(api, exam, big, "big.png")
    assert response.status_code == 413
    assert "over the 1 MB upload limit (LUSWEB_MAX_UPLOAD_MB)" in response.data["error"]
    assert ZoneClip.all_objects.count() == 0 and stored_files() == []


def test_clip_for_an_exam_of_another_study(setup: tuple[APIClient, Exam, Any]) -> None:
    api, _exam, _ = setup
    foreign = ExamFactory()  # another study, the user is not a member
    response = api.post("/api/v1/clips/", {"exam": foreign.pk, "zone": "R1",
                                           "file": SimpleUploadedFile("a.png", png_bytes(9))}, format="multipart")
    assert response.status_code == 400
    assert f"exam {foreign.pk} does not exist or belongs to a study you are not a member of" in response.data["error"]
    assert ZoneClip.all_objects.count() == 0 and stored_files() == []


def test_dicom_of_another_patients_study_instance(setup: tuple[APIClient, Exam, Any]) -> None:
    api, exam, user = setup
    uid = generate_uid()
    other_exam = ExamFactory(patient=PatientFactory(study=exam.patient.study))
    _ready(api, other_exam, _mono_dicom(2, study_uid=uid), "a.dcm")
    files = stored_files()
    up = upload_checked(api, exam, _mono_dicom(2, study_uid=uid), "b.dcm")
    assert up.response.status_code == 202 and up.clip is not None and up.clip["status"] == "failed"
    assert up.clip["code"] == "foreign_study_instance"
    error = up.clip["error"]
    assert f"Study Instance UID {uid}" in error and "another patient" in error and f"exam {other_exam.pk}" in error
    assert ZoneClip.objects.count() == 1 and stored_files() == files


def test_occupied_zone_without_replace(setup: tuple[APIClient, Exam, Any]) -> None:
    api, exam, _ = setup
    _ready(api, exam, png_bytes(1), "a.png")
    files = stored_files()
    response = _upload(api, exam, png_bytes(2), "b.png")
    assert response.status_code == 409 and "zone R1 of this exam already has a clip" in response.data["error"]
    assert response.data["code"] == "zone_occupied"
    same_file_other_zone = _upload(api, exam, png_bytes(1), "a.png", zone="R2")
    assert same_file_other_zone.status_code == 409
    assert "already stored as zone R1" in same_file_other_zone.data["error"]
    assert ZoneClip.all_objects.count() == 1 and stored_files() == files


def test_researcher_upload_is_refused(setup: tuple[APIClient, Exam, Any], api_for: Callable[..., APIClient]) -> None:
    _, exam, _ = setup
    researcher = UserFactory()
    Membership.objects.create(study=exam.patient.study, user=researcher, role=Role.RESEARCHER)
    response = _upload(api_for(researcher), exam, png_bytes(1), "a.png")
    assert response.status_code == 403 and "read-only" in response.data["error"]
    assert ZoneClip.all_objects.count() == 0 and stored_files() == []


def test_web_form_upload_and_error(setup: tuple[APIClient, Exam, Any], client: Any) -> None:
    _, exam, user = setup
    client.force_login(user)
    ok = client.post(f"/exams/{exam.pk}/", {"zone": "R2", "file": SimpleUploadedFile("z.png", png_bytes(4))}, follow=True)
    html = ok.content.decode()
    assert ok.status_code == 200 and "z.png received for zone R2: checking the file…" in html
    pending = ZoneClip.all_objects.get(zone="R2")
    assert pending.status == "pending" and not ZoneClip.objects.exists()
    row = html[html.index('id="zone-R2"'):]
    assert 'data-upload-status="pending"' in row[:row.index("</tr>")] and "checking the file…" in row[:row.index("</tr>")]
    assert f'data-uploads-checking="{pending.pk}"' in html
    bad = client.post(f"/exams/{exam.pk}/", {"zone": "R3", "file": SimpleUploadedFile("z.txt", b"hello")}, follow=True)
    assert "z.txt: not a recognised DICOM, video or image file" in bad.content.decode()
    from patients.imaging.process import clip_process

    clip_process(clip_id=pending.pk)
    html = client.get(f"/exams/{exam.pk}/").content.decode()
    row = html[html.index('id="zone-R2"'):]
    assert f'src="/clips/{pending.pk}/frames/0.png"' in row[:row.index("</tr>")] and 'data-uploads-checking=""' in html
    assert list(ZoneClip.all_objects.values_list("zone", "status")) == [("R2", "ready")]


# --- every container format of the public POCUS set, through the API ------------------------


def test_every_pocus_container_format_ingests(setup: tuple[APIClient, Exam, Any], shared_data: Path) -> None:
    api, exam, _ = setup
    by_ext: dict[str, Path] = {}
    for path in sorted((shared_data / "pocus").rglob("*")):
        if path.is_file() and path.suffix.lower() != ".csv":
            by_ext.setdefault(path.suffix, path)  # one file per spelling (.mp4 and .MP4 both)
    assert {e.lower() for e in by_ext} >= {".mp4", ".avi", ".mpeg", ".mov", ".gif", ".png", ".jpg"}
    zones = exam.zone_codes
    for i, (ext, path) in enumerate(sorted(by_ext.items(), key=lambda kv: (kv[1].stat().st_size, kv[0]))):
        data = _ready(api, exam, path.read_bytes(), path.name, zone=zones[i])
        assert data["frame_count"] >= 1 and data["rows"] > 16 and data["columns"] > 16
        still = ext.lower() in (".png", ".jpg")
        assert (data["frame_count"] == 1) if still else (data["frame_count"] > 1), path.name
