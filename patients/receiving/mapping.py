"""What a received DICOM instance says of itself, and where the study's rules file it.

Pure-ish functions on a pydicom ``Dataset`` and a ``Study`` (the study's ``dicom_*`` fields):

* :func:`header_read` parses the received bytes and refuses (``ServiceError``, nothing stored) what
  can never become a clip: not DICOM, an undecodable header, a SOP class that is no ultrasound or
  secondary-capture image (an SR, a presentation state ...), no pixel data, pixel data that does not
  match its header, or a transfer syntax this server cannot decode.
* :func:`instance_facts` reads the fields the inbox and the exam need (UIDs, PatientID, series
  description, the zone's value, the acquisition time).
* :func:`patient_for` (PatientID -> patient, by hospital number or code, as the study says),
  :func:`zone_for` (the study's zone tag and pattern, ``patients.imaging.zone_rules``) and
  :func:`exam_uid` (the Study Instance UID as the exam records it: remapped the way
  ``patients.imaging.core.deid`` remaps it in de-identifying studies, so that it equals the stored
  clips' ``study_instance_uid``).
"""
from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass
from typing import Any

import pydicom
from django.utils import timezone
from pydicom.errors import InvalidDicomError
from pydicom.pixels import get_decoder
from pydicom.uid import UID, ExplicitVRLittleEndian

from lusweb.errors import ServiceError
from patients.imaging.core import deid
from patients.imaging.core.reader import PROBE_BYTES, probe_format
from patients.imaging.core.reader.dicom_layout import check_pixel_data
from patients.imaging.zone_rules import zone_from_value
from patients.records.models import Patient
from patients.studies.models import DicomPatientMatch, Study
from patients.studies.protocols import get_protocol

#: The SOP classes received as clips: ultrasound (single and multi-frame, with the retired ones
#: older machines still send) and secondary capture (a screen grab of the scanner).
IMAGE_SOP_CLASSES: dict[str, str] = {
    "1.2.840.10008.5.1.4.1.1.6.1": "Ultrasound Image Storage",
    "1.2.840.10008.5.1.4.1.1.3.1": "Ultrasound Multi-frame Image Storage",
    "1.2.840.10008.5.1.4.1.1.6": "Ultrasound Image Storage (Retired)",
    "1.2.840.10008.5.1.4.1.1.3": "Ultrasound Multi-frame Image Storage (Retired)",
    "1.2.840.10008.5.1.4.1.1.7": "Secondary Capture Image Storage",
    "1.2.840.10008.5.1.4.1.1.7.2": "Multi-frame Grayscale Byte Secondary Capture Image Storage",
    "1.2.840.10008.5.1.4.1.1.7.3": "Multi-frame Grayscale Word Secondary Capture Image Storage",
    "1.2.840.10008.5.1.4.1.1.7.4": "Multi-frame True Color Secondary Capture Image Storage",
}

_PIXEL_KEYWORDS = ("Rows", "Columns", "BitsAllocated", "SamplesPerPixel", "PhotometricInterpretation")


@dataclass(frozen=True)
class InstanceFacts:
    """What the instance says (as received, before any remapping); strings are '' when absent."""

    sop_class_uid: str
    sop_instance_uid: str
    study_instance_uid: str
    series_instance_uid: str
    patient_id: str
    series_description: str
    image_comments: str
    zone_value: str  # the value of the study's zone tag
    acquired_at: dt.datetime | None
    device: str


def _text(ds: Any, keyword: str, limit: int) -> str:
    try:
        value = ds.get(keyword)
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError):  # a malformed value
        return ""
    if value is None:
        return ""
    if isinstance(value, pydicom.multival.MultiValue):
        value = "\\".join(str(v) for v in value)
    return str(value).strip()[:limit]


def decodable(tsyntax: str) -> bool:
    """Whether this server can decode pixel data in ``tsyntax`` (a pydicom pixel decoder is installed)."""
    try:
        return bool(get_decoder(UID(tsyntax)).is_available)
    except NotImplementedError:
        return False


def header_read(data: bytes) -> Any:
    """The parsed dataset of a received instance (a DICOM file: preamble and file meta, or a bare
    data set); ``ServiceError`` naming the problem otherwise.

    Codes: ``not_dicom`` (no DICOM at all), ``bad_header`` (a header pydicom cannot read),
    ``not_an_image`` (a SOP class outside :data:`IMAGE_SOP_CLASSES`), ``no_pixel_data`` (an image
    SOP class without pixels or the attributes that describe them), ``bad_pixel_data`` (pixel data
    that does not match its header), ``unsupported_transfer_syntax``.
    """
    if not data:
        raise ServiceError("the instance is empty (0 bytes)", code="not_dicom")
    if probe_format(data[:PROBE_BYTES]) != "dicom":
        raise ServiceError("not a DICOM instance (no DICOM preamble or data set at its start)", code="not_dicom")
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
        ds.get("SOPClassUID")  # force=True parses lazily: touch the header
    except (InvalidDicomError, EOFError) as exc:
        raise ServiceError(f"not a DICOM instance: {exc}", code="not_dicom") from exc
    except Exception as exc:  # pydicom raises assorted errors on garbage
        raise ServiceError(f"the DICOM header could not be read: {exc}", code="bad_header") from exc
    if not len(ds):
        raise ServiceError("not a DICOM instance: no data elements", code="not_dicom")
    _check_image(ds)
    return ds


def _check_image(ds: Any) -> None:
    sop_class = _text(ds, "SOPClassUID", 64) or _text(ds.get("file_meta") or {}, "MediaStorageSOPClassUID", 64)
    if sop_class not in IMAGE_SOP_CLASSES:
        name = UID(sop_class).name if sop_class else "an instance without SOP class"
        raise ServiceError(
            f"{name} is not an image LUSWeb receives (SOP class {sop_class or '-'}); it receives "
            "ultrasound and secondary-capture images", code="not_an_image")
    missing = [k for k in _PIXEL_KEYWORDS if k not in ds]
    if "PixelData" not in ds or missing:
        raise ServiceError(f"the {IMAGE_SOP_CLASSES[sop_class]} instance has no usable pixel data"
                           + (f" (missing {', '.join(missing)})" if missing else ""), code="no_pixel_data")
    tsyntax = UID(str(ds.file_meta.get("TransferSyntaxUID") or ExplicitVRLittleEndian))
    if not decodable(tsyntax):
        raise ServiceError(f"transfer syntax {tsyntax.name} ({tsyntax}) cannot be decoded by this server",
                           code="unsupported_transfer_syntax")
    try:
        check_pixel_data(ds, tsyntax, {"declared_frame_count": None})
    except Exception as exc:  # the reader's ClipReadError subclasses, or pydicom on a broken element
        raise ServiceError(f"the pixel data does not match the header: {exc}", code="bad_pixel_data") from exc


def _datetime(date: str, time: str) -> dt.datetime | None:
    date = date.strip()[:8]
    time = (time.strip().split(".")[0] + "000000")[:6]
    try:
        naive = dt.datetime.strptime(date + time, "%Y%m%d%H%M%S")
    except ValueError:
        return None
    return timezone.make_aware(naive, timezone.get_default_timezone())


def acquired_at(ds: Any) -> dt.datetime | None:
    """When the exam was acquired: Study Date/Time, else Acquisition DateTime, else Content
    Date/Time (local time of this server's zone); None when none of them is readable."""
    study = _datetime(_text(ds, "StudyDate", 8), _text(ds, "StudyTime", 16))
    if study is not None:
        return study
    stamp = _text(ds, "AcquisitionDateTime", 26)
    if stamp:
        found = _datetime(stamp[:8], stamp[8:])
        if found is not None:
            return found
    return _datetime(_text(ds, "ContentDate", 8), _text(ds, "ContentTime", 16))


def instance_facts(ds: Any, study: Study) -> InstanceFacts:
    """The fields of ``ds`` that filing and the inbox use; the zone value is the study's zone tag's."""
    return InstanceFacts(
        sop_class_uid=_text(ds, "SOPClassUID", 64), sop_instance_uid=_text(ds, "SOPInstanceUID", 64),
        study_instance_uid=_text(ds, "StudyInstanceUID", 64), series_instance_uid=_text(ds, "SeriesInstanceUID", 64),
        patient_id=_text(ds, "PatientID", 64), series_description=_text(ds, "SeriesDescription", 200),
        image_comments=_text(ds, "ImageComments", 200), zone_value=_text(ds, study.dicom_zone_tag, 200),
        acquired_at=acquired_at(ds),
        device=" ".join(v for v in (_text(ds, "Manufacturer", 64), _text(ds, "ManufacturerModelName", 64)) if v),
    )


def patient_for(study: Study, patient_id: str) -> Patient | None:
    """The study's patient that ``patient_id`` names (hospital number or code, as the study's
    ``dicom_patient_match`` says); None when no patient, or more than one, has it."""
    patient_id = patient_id.strip()
    if not patient_id:
        return None
    field = "code" if study.dicom_patient_match == DicomPatientMatch.CODE else "hospital_number"
    found = list(Patient.objects.filter(study=study, **{field: patient_id})[:2])
    return found[0] if len(found) == 1 else None


def zone_for(study: Study, value: str, protocol: str | None = None) -> str | None:
    """The zone code the study's pattern reads in ``value`` (its zone tag's value), when it is a
    zone of ``protocol`` (default: the study's)."""
    return zone_from_value(value, study.dicom_zone_pattern, get_protocol(protocol or study.protocol).codes)


def exam_uid(study: Study, study_instance_uid: str) -> str:
    """The Study Instance UID as an exam of ``study`` records it: remapped with the study's secret
    when it de-identifies (as its stored clips carry it), else as received; '' when none."""
    uid = study_instance_uid.strip()
    if not uid:
        return ""
    return deid.remap_uid(study.secret, uid) if study.deidentify else uid
