"""What the Ultrasound Image IODs require of the de-identified copy that LUSWeb stores.

Pure Python (pydicom datasets passed in): no Django import. :mod:`patients.imaging.core.deid`
calls :func:`conform_us` last, on every DICOM it writes (cleaned uploads and DICOMs made of video
or image frames), so what it stores validates against PS3.3 A.6 (US Image) and A.7 (US
Multi-frame Image) - checked by dicom3tools' ``dciodvfy`` in tests/patients/imaging/test_conformance.py.

Only the header is touched here, and only with values that are either empty (Type 2: "unknown")
or known for certain: the image's laterality, from the lung zone the clinician filed it under.
"""
from __future__ import annotations

from typing import Any

__all__ = ["TYPE2", "conform_us", "zone_laterality"]

#: Type 2 attributes of the modules of the US Image and US Multi-frame Image IODs (PS3.3 A.6.3,
#: A.7.3), by module. Type 2 means "shall be present, empty when unknown" (PS3.5 7.4.3): an
#: upload that lacks one, or one that the basic profile's X action removed, gets it back empty.
TYPE2 = (
    # Patient module, PS3.3 C.7.1.1
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex",
    # General Study module, PS3.3 C.7.2.1
    "StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID", "AccessionNumber",
    # General Series module, PS3.3 C.7.3.1
    "SeriesNumber",
    # General Equipment module, PS3.3 C.7.5.1
    "Manufacturer",
    # General Image module, PS3.3 C.7.6.1. Patient Orientation is Type 2C, "required if the image
    # does not require Image Orientation (Patient) and Image Position (Patient)": an ultrasound
    # image has no Image Plane module, so it is always required (empty: the probe's orientation to
    # the patient is not recorded as row/column directions).
    "InstanceNumber", "PatientOrientation",
)


def zone_laterality(zone: str) -> str:
    """``R`` or ``L`` for a lung zone of the right or left hemithorax (zone codes are ``R1`` ...
    ``L8``, see ``patients.imaging.zone_rules``); ``""`` when the zone names no side."""
    side = (zone or "").strip()[:1].upper()
    return side if side in ("R", "L") else ""


def _laterality(ds: Any, zone: str) -> None:
    """The lungs are a paired body part. General Series Laterality (0020,0060) is Type 2C,
    "required if the body part examined is a paired structure and Image Laterality (0020,0062) ...
    is not present" (PS3.3 C.7.3.1). The clip's zone says which lung this image shows, so the
    image-level Image Laterality (General Image, PS3.3 C.7.6.1; enumerated values R, L, U, B) is
    set from it. It is image-level on purpose: a device's series may hold both lungs.

    With Image Laterality present, the series Laterality's condition is not met, and a Type 2C
    attribute whose condition is not met is not included (PS3.5 7.4.4): an empty one (which
    dciodvfy also flags, "only permitted to be empty when actually unknown") is removed; one with a
    value is the device's own statement and is kept. Without a side, Laterality stays required:
    present and empty, "unknown" (Type 2)."""
    side = zone_laterality(zone)
    if side:
        ds.ImageLaterality = side
        if "Laterality" in ds and not str(ds.Laterality or "").strip():
            del ds.Laterality
    elif "Laterality" not in ds and not str(ds.get("ImageLaterality", "") or "").strip():
        ds.Laterality = ""


def conform_us(ds: Any, *, zone: str = "") -> None:
    """Give ``ds`` what the US Image IODs require and de-identification does not invent: its
    missing Type 2 attributes (empty) and its laterality (from ``zone``). Nothing is removed
    except an empty Laterality that Image Laterality makes not applicable."""
    for keyword in TYPE2:
        if keyword not in ds:
            setattr(ds, keyword, None if keyword in ("SeriesNumber", "InstanceNumber") else "")
    _laterality(ds, zone)
