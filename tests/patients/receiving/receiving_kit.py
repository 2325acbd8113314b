"""Instances as an ultrasound machine sends them, for the receiver's tests (service and SCP)."""
from __future__ import annotations

import io

import pydicom
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

from patients.imaging.core.phantoms import phantom_cohort_clip, write_dicom

COMPREHENSIVE_SR = "1.2.840.10008.5.1.4.1.1.88.33"
#: pydicom's ultrasound test files: palette colour, YBR and RGB, single and multi-frame.
PYDICOM_US_FILES = ("examples_ybr_color.dcm", "examples_rgb_color.dcm", "examples_palette.dcm")


def _bytes(ds: Dataset) -> bytes:
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def relabel(data: bytes, *, patient_id: str, zone: str = "", study_uid: str | None = None) -> bytes:
    """``data`` with another PatientID, SeriesDescription ``Lung <zone>`` and Study Instance UID."""
    ds = pydicom.dcmread(io.BytesIO(data))
    ds.PatientID = patient_id
    ds.SeriesDescription = f"Lung {zone}" if zone else "Lung"
    if study_uid:
        ds.StudyInstanceUID = study_uid
    return _bytes(ds)


def phantom(*, patient_id: str, zone: str = "", study_uid: str | None = None, seed: int = 1, frames: int = 3,
            jpeg: bool = False, study_date: str = "") -> bytes:
    """A phantom Ultrasound Multi-frame instance (64x64); ``zone`` in SeriesDescription."""
    buf = io.BytesIO()
    write_dicom(phantom_cohort_clip(seed % 4, seed=seed, n_frames=frames, rows=64, columns=64), buf, jpeg=jpeg,
                patient_id=patient_id, study_uid=study_uid, study_date=study_date)
    return relabel(buf.getvalue(), patient_id=patient_id, zone=zone)


def pydicom_us(name: str, *, patient_id: str, zone: str, study_uid: str) -> bytes:
    """One of pydicom's ultrasound test files, relabelled for a patient, zone and study."""
    path = get_testdata_file(name)
    assert path is not None, name
    with open(path, "rb") as fh:
        return relabel(fh.read(), patient_id=patient_id, zone=zone, study_uid=study_uid)


def structured_report(*, patient_id: str, zone: str = "R1") -> bytes:
    """A Comprehensive SR (no image): never a clip."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = COMPREHENSIVE_SR
    ds.SOPClassUID = COMPREHENSIVE_SR
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.PatientID, ds.SeriesDescription = "SR", patient_id, f"Lung {zone}"
    ds.ValueType, ds.CompletionFlag, ds.VerificationFlag = "CONTAINER", "COMPLETE", "UNVERIFIED"
    ds.ContinuityOfContent = "SEPARATE"
    return _bytes(ds)


#: Every transfer syntax the reader decodes, as an ultrasound machine may send it, and the dcmtk
#: storescu option that proposes it.
TRANSFER_SYNTAXES: dict[str, str] = {
    "1.2.840.10008.1.2.1": "-xe",  # Explicit VR Little Endian
    "1.2.840.10008.1.2": "-xi",  # Implicit VR Little Endian
    "1.2.840.10008.1.2.2": "-xb",  # Explicit VR Big Endian (retired, still sent)
    "1.2.840.10008.1.2.1.99": "-xd",  # Deflated Explicit VR Little Endian
    "1.2.840.10008.1.2.4.50": "-xy",  # JPEG Baseline
    "1.2.840.10008.1.2.4.80": "-xt",  # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.90": "-xv",  # JPEG 2000 Lossless
    "1.2.840.10008.1.2.5": "-xr",  # RLE Lossless
}


def _j2k_frames(ds: Dataset) -> list[bytes]:
    frames = []
    for frame in ds.pixel_array.reshape(-1, ds.Rows, ds.Columns):
        out = io.BytesIO()
        Image.fromarray(frame).save(out, format="JPEG2000", no_jp2=True, irreversible=False)
        frames.append(out.getvalue())
    return frames


def transcoded(data: bytes, tsyntax: str) -> bytes:
    """``data`` (an uncompressed 8-bit MONOCHROME2 phantom) in ``tsyntax``."""
    ds = pydicom.dcmread(io.BytesIO(data))
    uid = UID(tsyntax)
    if uid == "1.2.840.10008.1.2.4.50":
        raise ValueError("write JPEG baseline with phantom(jpeg=True)")
    if uid == "1.2.840.10008.1.2.4.90":
        frames = _j2k_frames(ds)
        ds.PixelData = encapsulate(frames)
        ds["PixelData"].VR = "OB"
        ds.file_meta.TransferSyntaxUID = uid
        ds.LossyImageCompression = "00"
    elif uid.is_compressed:
        ds.compress(uid)
    else:
        ds.file_meta.TransferSyntaxUID = uid
        ds["PixelData"].VR = "OB"  # 8-bit samples: the same bytes in either byte order
    out = io.BytesIO()
    pydicom.dcmwrite(out, ds, enforce_file_format=uid.is_little_endian, implicit_vr=uid.is_implicit_VR,
                     little_endian=uid.is_little_endian, force_encoding=not uid.is_little_endian)
    return out.getvalue()
