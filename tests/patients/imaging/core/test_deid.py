"""De-identification at ingest: DICOM headers (PS3.15 basic profile), UID remapping, burned-in text."""
from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from rest_framework.test import APIClient

from patients.imaging.core import deid
from patients.imaging.core.phantoms import PhantomSpec, render_phantom, write_dicom
from patients.imaging.core.reader import read_clip
from patients.imaging.core.sector import find_sector
from patients.models import AuditEvent, Exam, Membership, Role, Study, ZoneClip
from tests.factories import ExamFactory, PatientFactory, StudyFactory, UserFactory
from tests.patients.conftest import Uploaded, stored_files, upload_checked
from tests.patients.imaging.core.phantom_images import write_png

pytestmark = pytest.mark.django_db

PYDICOM_US = ["examples_ybr_color.dcm", "examples_rgb_color.dcm", "examples_palette.dcm"]
NAME, PID = "Doe^Johnathan", "HN-4242-77"


@pytest.fixture
def setup(api_for: Callable[..., APIClient]) -> dict[str, Any]:
    study = StudyFactory(protocol="12-zone")  # deidentify=True is the default
    users = {role: UserFactory() for role in Role.values}
    for role, user in users.items():
        Membership.objects.create(study=study, user=user, role=role)
    patient = PatientFactory(study=study)
    return {"study": study, "users": users, "exam": ExamFactory(patient=patient),
            "api": api_for(users[Role.CLINICIAN])}


def _upload(api: APIClient, exam: Exam, data: bytes, name: str, zone: str = "R1") -> Uploaded:
    """Upload through the API (202) and run the ingest worker's check of it."""
    return upload_checked(api, exam, data, name, zone)


def _ready(up: Uploaded) -> int:
    """The id of an upload that the worker's check made ready."""
    assert up.response.status_code == 202 and up.ready, (up.response.data, up.clip)
    assert up.clip is not None
    return int(up.clip["id"])


def _stored(clip_id: int) -> tuple[ZoneClip, bytes]:
    clip = ZoneClip.objects.get(pk=clip_id)
    with clip.file.open("rb") as fh:
        return clip, fh.read()


def _phantom_dicom(seed: int = 0, *, jpeg: bool = False, study_uid: str | None = None, **spec: Any) -> tuple[Any, bytes]:
    phantom = render_phantom(PhantomSpec(n_frames=12, seed=seed, burned_in_text=True, **spec))
    buf = io.BytesIO()
    write_dicom(phantom, buf, jpeg=jpeg, patient_name=NAME, patient_id=PID, study_uid=study_uid,
                study_date="20260304")
    return phantom, buf.getvalue()


def _identifying_values(ds: pydicom.Dataset) -> list[str]:
    values = []
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "InstitutionName", "InstitutionAddress",
                    "ReferringPhysicianName", "OperatorsName", "PerformingPhysicianName", "StationName",
                    "AccessionNumber", "DeviceSerialNumber", "StudyDate", "SeriesDate", "ContentDate",
                    "AcquisitionDateTime", "StudyTime"):
        value = str(ds.get(keyword, "") or "").strip()
        if len(value) >= 4:
            values.append(value)
    return values


def _uids(ds: pydicom.Dataset) -> dict[str, str]:
    out = {k: str(ds.get(k)) for k in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID") if ds.get(k)}
    out["MediaStorageSOPInstanceUID"] = str(ds.file_meta.MediaStorageSOPInstanceUID)
    return out


@pytest.mark.parametrize("name", PYDICOM_US)
def test_pydicom_ultrasound_files_lose_every_identifier(setup: dict[str, Any], name: str) -> None:
    raw = Path(get_testdata_file(name)).read_bytes()
    original = pydicom.dcmread(io.BytesIO(raw))
    clip, data = _stored(_ready(_upload(setup["api"], setup["exam"], raw, f"{original.PatientName}.dcm")))
    assert clip.deidentified and clip.original_filename == "r1.dcm" and not clip.source
    ds = pydicom.dcmread(io.BytesIO(data))
    pseudo = deid.pseudonym(setup["study"].secret, setup["exam"].patient_id)
    assert (str(ds.PatientName), ds.PatientID, ds.PatientIdentityRemoved) == (pseudo, pseudo, "YES")
    assert "PS3.15" in " ".join(ds.DeidentificationMethod)
    assert [i.CodeValue for i in ds.DeidentificationMethodCodeSequence][0] == "113100"
    for value in _identifying_values(original):
        assert value.encode() not in data, value
    assert not any(elem.tag.is_private for elem in ds.iterall())
    assert all(not str(e.value).strip() for e in ds.iterall() if e.VR in ("DA", "DT", "TM"))
    for key, uid in _uids(original).items():
        assert uid.encode() not in data
        assert _uids(ds)[key] == deid.remap_uid(setup["study"].secret, uid)
    assert clip.study_instance_uid == ds.StudyInstanceUID and clip.sop_instance_uid == ds.SOPInstanceUID
    assert str(ds.SOPClassUID) == str(original.SOPClassUID)  # standard UIDs are kept
    # The stored DICOM decodes to the stored (redacted) frames.
    assert np.array_equal(read_clip(data).frames, clip.load_frames())


def test_phantom_text_is_redacted_and_the_sector_untouched(setup: dict[str, Any]) -> None:
    for i, geometry in enumerate(("convex", "linear")):
        phantom, raw = _phantom_dicom(i, geometry=geometry, effusion=bool(i))
        clip, data = _stored(_ready(_upload(setup["api"], setup["exam"], raw, "Doe_John.dcm", zone=f"R{i + 1}")))
        frames = clip.load_frames()
        sector, text = phantom.sector_mask, phantom.text_mask
        assert text.any()
        assert np.array_equal(frames[:, sector], phantom.frames[:, sector])  # not one pixel changed inside
        assert frames[:, text].max() == 0  # burned-in text gone
        assert np.array_equal(read_clip(data).frames, frames)  # also in the stored DICOM pixel data
        assert NAME.encode() not in data and PID.encode() not in data and b"20260304" not in data
        ds = pydicom.dcmread(io.BytesIO(data))
        assert ds.BurnedInAnnotation == "NO" and "113101" in [c.CodeValue for c in ds.DeidentificationMethodCodeSequence]
        assert clip.meta["deidentification"]["pixels"] == "redacted-native"


def test_jpeg_phantom_is_stored_as_lossless_redacted_dicom(setup: dict[str, Any]) -> None:
    phantom, raw = _phantom_dicom(3, jpeg=True)
    decoded = read_clip(raw).frames
    clip, data = _stored(_ready(_upload(setup["api"], setup["exam"], raw, "scan.dcm")))
    ds = pydicom.dcmread(io.BytesIO(data))
    # Re-encoded losslessly (JPEG-LS), not as a second lossy generation and not uncompressed.
    assert ds.file_meta.TransferSyntaxUID == deid.STORED_SYNTAX == "1.2.840.10008.1.2.4.80"
    assert ds.PhotometricInterpretation == "MONOCHROME2"
    assert ds.LossyImageCompression == "01"  # it was lossy once: that stays declared
    frames = clip.load_frames()
    assert np.array_equal(read_clip(data).frames, frames)
    assert len(data) < frames.nbytes
    assert np.array_equal(frames[:, phantom.sector_mask], decoded[:, phantom.sector_mask])
    # JPEG ringing blurs the text's edges towards the sector: all text farther than 3 px from it is gone.
    from scipy import ndimage

    far = phantom.text_mask & (ndimage.distance_transform_edt(~phantom.sector_mask) > 3)
    assert frames[:, far].max() == 0
    assert NAME.encode() not in data and clip.meta["deidentification"]["pixels"] == "redacted-reencoded"


def test_uids_map_consistently_within_a_study_and_differ_across(setup: dict[str, Any],
                                                               api_for: Callable[..., APIClient]) -> None:
    study_uid = "1.2.826.0.1.3680043.8.498.12345"
    api, exam = setup["api"], setup["exam"]
    second_exam = ExamFactory(patient=exam.patient)
    stored = []
    for target, seed in ((exam, 1), (second_exam, 2)):
        _phantom, raw = _phantom_dicom(seed, study_uid=study_uid)
        stored.append(pydicom.dcmread(io.BytesIO(_stored(_ready(_upload(api, target, raw, "a.dcm")))[1])))
    assert stored[0].StudyInstanceUID == stored[1].StudyInstanceUID == deid.remap_uid(setup["study"].secret, study_uid)
    assert stored[0].SOPInstanceUID != stored[1].SOPInstanceUID
    assert stored[0].StudyInstanceUID.startswith("2.25.") and len(stored[0].StudyInstanceUID) <= 64
    # Another study maps the same UID elsewhere.
    other = StudyFactory(protocol="12-zone")
    Membership.objects.create(study=other, user=setup["users"][Role.CLINICIAN], role=Role.CLINICIAN)
    _phantom, raw = _phantom_dicom(5, study_uid=study_uid)
    elsewhere_id = _ready(_upload(api, ExamFactory(patient=PatientFactory(study=other)), raw, "a.dcm"))
    elsewhere = pydicom.dcmread(io.BytesIO(_stored(elsewhere_id)[1]))
    assert elsewhere.StudyInstanceUID != stored[0].StudyInstanceUID
    # The patient-mixing guard still works on remapped UIDs.
    _phantom, raw = _phantom_dicom(6, study_uid=study_uid)
    refused = _upload(api, ExamFactory(patient=PatientFactory(study=setup["study"])), raw, "b.dcm")
    assert refused.response.status_code == 202 and refused.clip is not None
    assert refused.clip["status"] == "failed" and refused.clip["code"] == "foreign_study_instance"
    # Named as this study records it (remapped): the file's own UID is not kept anywhere.
    assert stored[0].StudyInstanceUID in refused.clip["error"] and study_uid not in refused.clip["error"]


def test_images_and_videos_become_deidentified_dicom(setup: dict[str, Any]) -> None:
    phantom = render_phantom(PhantomSpec(n_frames=1, seed=4, burned_in_text=True))
    buf = io.BytesIO()
    write_png(phantom, buf)
    clip, data = _stored(_ready(_upload(setup["api"], setup["exam"], buf.getvalue(), "Doe John 1962.png")))
    assert clip.format == "png" and clip.original_filename == "r1.png"
    assert clip.file.name.endswith("deidentified.dcm")
    ds = pydicom.dcmread(io.BytesIO(data))
    assert ds.PatientIdentityRemoved == "YES" and ds.Modality == "US"
    frames = clip.load_frames()
    assert np.array_equal(read_clip(data).frames, frames)
    assert np.array_equal(frames[:, phantom.sector_mask], phantom.frames[:, phantom.sector_mask])
    assert frames[:, phantom.text_mask].max() == 0


def test_keep_original_and_who_may_download_it(setup: dict[str, Any], client: Any,
                                               django_capture_on_commit_callbacks: Any) -> None:
    study: Study = setup["study"]
    study.keep_original = True
    study.save()
    _phantom, raw = _phantom_dicom(7)
    clip = ZoneClip.objects.get(pk=_ready(_upload(setup["api"], setup["exam"], raw, "Doe.dcm")))
    with clip.source.open("rb") as fh:
        assert fh.read() == raw  # the untouched upload, byte for byte
    client.force_login(setup["users"][Role.RESEARCHER])
    assert client.get(f"/clips/{clip.pk}/source/").status_code == 403
    deidentified = client.get(f"/clips/{clip.pk}/original/")
    assert deidentified.status_code == 200 and NAME.encode() not in b"".join(deidentified.streaming_content)
    client.force_login(setup["users"][Role.CLINICIAN])
    source = client.get(f"/clips/{clip.pk}/source/")
    assert source.status_code == 200 and b"".join(source.streaming_content) == raw
    event = AuditEvent.objects.get(action="view_identifying", object_type="zoneclip")
    assert event.actor == setup["users"][Role.CLINICIAN] and event.changes == {"download": "source"}
    with django_capture_on_commit_callbacks(execute=True):
        clip.delete()
    assert stored_files() == []  # the source goes with the clip


def test_without_keep_original_nothing_identifying_is_stored(setup: dict[str, Any], client: Any) -> None:
    _phantom, raw = _phantom_dicom(8)
    clip = ZoneClip.objects.get(pk=_ready(_upload(setup["api"], setup["exam"], raw, "Doe.dcm")))
    assert not clip.source
    for path in stored_files():
        content = path.read_bytes()
        assert NAME.encode() not in content and PID.encode() not in content
    client.force_login(setup["users"][Role.CLINICIAN])
    assert client.get(f"/clips/{clip.pk}/source/").status_code == 404


def _kept_as_sent(setup: dict[str, Any], data: bytes, name: str) -> ZoneClip:
    """Upload ``data`` to a study switched to keeping clips as sent (no de-identification)."""
    study: Study = setup["study"]
    study.deidentify = False
    study.save()
    clip = ZoneClip.objects.get(pk=_ready(_upload(setup["api"], setup["exam"], data, name)))
    assert not clip.deidentified
    return clip


def test_original_of_a_non_deidentified_clip_is_for_clinicians_only(setup: dict[str, Any], client: Any) -> None:
    _phantom, raw = _phantom_dicom(9)
    clip = _kept_as_sent(setup, raw, "Doe.dcm")
    client.force_login(setup["users"][Role.RESEARCHER])
    assert client.get(f"/clips/{clip.pk}/original/").status_code == 403
    client.force_login(setup["users"][Role.STUDY_ADMIN])
    assert b"".join(client.get(f"/clips/{clip.pk}/original/").streaming_content) == raw


def test_failed_deidentification_stores_nothing(setup: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("(0028,0010)")

    monkeypatch.setattr(deid, "deidentify_dataset", boom)
    _phantom, raw = _phantom_dicom(10)
    up = _upload(setup["api"], setup["exam"], raw, "a.dcm")
    assert up.response.status_code == 202 and up.clip is not None
    assert up.clip["status"] == "failed" and up.clip["code"] == "deidentification_failed"
    assert "could not be de-identified (KeyError)" in up.clip["error"]
    assert ZoneClip.objects.count() == 0 and stored_files() == []
    assert ZoneClip.all_objects.get().status == "failed"  # kept with its error; no file


# --- pure functions ---------------------------------------------------------------------------------


@pytest.mark.parametrize("geometry", ["convex", "linear"])
@pytest.mark.parametrize("effusion", [False, True])
def test_sector_finder_keeps_the_whole_sector_and_drops_the_text(geometry: str, effusion: bool) -> None:
    phantom = render_phantom(PhantomSpec(geometry=geometry, effusion=effusion, score=2, b_lines=True, n_frames=20,
                                         seed=11, burned_in_text=True))
    sector = find_sector(phantom.frames)
    assert sector.found and sector.method == "motion"
    assert not (phantom.sector_mask & ~sector.mask).any()
    assert not (phantom.text_mask & sector.mask).any()


def test_sector_finder_refuses_to_guess() -> None:
    noise = np.random.default_rng(0).integers(0, 255, size=(1, 64, 80), dtype=np.uint8)
    sector = find_sector(noise)
    assert not sector.found and sector.mask.all()
    assert not find_sector(np.zeros((5, 64, 64), np.uint8)).found


def test_uid_and_pseudonym_functions() -> None:
    a = deid.remap_uid("secret-a", "1.2.3")
    assert a == deid.remap_uid("secret-a", "1.2.3") != deid.remap_uid("secret-b", "1.2.3")
    assert a.startswith("2.25.") and len(a) <= 64 and a[5:].isdigit()
    with pytest.raises(ValueError, match="secret"):
        deid.pseudonym("", 1)


def test_researchers_see_frames_of_a_non_deidentified_clip_without_its_burned_in_text(
        setup: dict[str, Any], client: Any, api_for: Callable[..., APIClient]) -> None:
    from PIL import Image

    phantom, raw = _phantom_dicom(10)
    clip = _kept_as_sent(setup, raw, "Doe.dcm")

    def frame(role: str, index: int = 3) -> np.ndarray:
        client.force_login(setup["users"][role])
        response = client.get(f"/clips/{clip.pk}/frames/{index}.png")
        assert response.status_code == 200, response.content[:200]
        return np.asarray(Image.open(io.BytesIO(response.content)))

    sector, text = phantom.sector_mask, phantom.text_mask
    clinician, researcher = frame(Role.CLINICIAN), frame(Role.RESEARCHER)
    assert clinician[text].max() > 0  # kept as sent: clinicians see the burned-in text
    assert researcher[text].max() == 0  # researchers do not
    assert np.array_equal(researcher[sector], clinician[sector])  # the image itself is untouched
    assert np.array_equal(frame(Role.RESEARCHER, 0)[sector], clip.load_frames()[0][sector])
    assert client.get(f"/clips/{clip.pk}/frames/{clip.frame_count}.png").status_code == 404  # one past the end
    # Nor the file name, which often carries the patient's name (the clinician sees it).
    assert b"Doe.dcm" not in client.get(f"/clips/{clip.pk}/").content
    assert "original_filename" not in api_for(setup["users"][Role.RESEARCHER]).get(f"/api/v1/clips/{clip.pk}/").data
    assert setup["api"].get(f"/api/v1/clips/{clip.pk}/").data["original_filename"] == "Doe.dcm"
    client.force_login(setup["users"][Role.CLINICIAN])
    assert b"Doe.dcm" in client.get(f"/clips/{clip.pk}/").content


def test_frames_without_a_sector_are_withheld_from_researchers(setup: dict[str, Any], client: Any) -> None:
    from PIL import Image

    noise = np.random.default_rng(0).integers(40, 255, (96, 96), dtype=np.uint8)  # bright edge to edge
    buf = io.BytesIO()
    Image.fromarray(noise).save(buf, format="PNG")
    clip = _kept_as_sent(setup, buf.getvalue(), "still.png")
    assert not find_sector(clip.load_frames()).found
    client.force_login(setup["users"][Role.RESEARCHER])
    response = client.get(f"/clips/{clip.pk}/frames/0.png")
    assert response.status_code == 403 and b"no ultrasound sector was found" in response.content
    client.force_login(setup["users"][Role.CLINICIAN])
    assert client.get(f"/clips/{clip.pk}/frames/0.png").status_code == 200
