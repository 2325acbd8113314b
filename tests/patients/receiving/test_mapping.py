"""The receiver's reading of an instance: header checks, facts, patient, zone, exam UID, time."""
from __future__ import annotations

import datetime as dt
import io

import pydicom
import pytest
from django.utils import timezone
from pydicom.encaps import encapsulate

from lusweb.errors import ServiceError
from patients.imaging.core import deid
from patients.receiving import mapping
from tests.factories import PatientFactory, StudyFactory
from tests.patients.receiving.receiving_kit import phantom


def _ds(**values: object) -> pydicom.Dataset:
    ds = pydicom.Dataset()
    for key, value in values.items():
        setattr(ds, key, value)
    return ds


def _edited(data: bytes, **changes: object) -> bytes:
    ds = pydicom.dcmread(io.BytesIO(data))
    for key, value in changes.items():
        if value is None:
            delattr(ds, key)
        else:
            setattr(ds, key, value)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


@pytest.mark.parametrize("changes, code", [
    ({"PixelData": None}, "no_pixel_data"),
    ({"Rows": None}, "no_pixel_data"),
    ({"SOPClassUID": "1.2.840.10008.5.1.4.1.1.11.1"}, "not_an_image"),  # a presentation state
])
def test_header_read_refuses_what_is_no_image(changes: dict[str, object], code: str) -> None:
    with pytest.raises(ServiceError) as refused:
        mapping.header_read(_edited(phantom(patient_id="P"), **changes))
    assert refused.value.code == code


def test_header_read_refuses_a_transfer_syntax_without_decoder() -> None:
    data = phantom(patient_id="P")
    ds = pydicom.dcmread(io.BytesIO(data))
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG2: no pydicom decoder
    ds.PixelData = encapsulate([b"\x00\x00\x01\xb3" * 8])
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    with pytest.raises(ServiceError) as refused:
        mapping.header_read(out.getvalue())
    assert refused.value.code == "unsupported_transfer_syntax" and "MPEG2" in refused.value.message
    assert not mapping.decodable("1.2.840.10008.1.2.4.100") and mapping.decodable("1.2.840.10008.1.2.4.80")


def test_acquired_at_prefers_study_date_then_acquisition_then_content() -> None:
    tz = timezone.get_default_timezone()
    assert mapping.acquired_at(_ds(StudyDate="20260312", StudyTime="101502.25")) == \
        dt.datetime(2026, 3, 12, 10, 15, 2, tzinfo=tz)
    assert mapping.acquired_at(_ds(StudyDate="", AcquisitionDateTime="20260313084500")) == \
        dt.datetime(2026, 3, 13, 8, 45, tzinfo=tz)
    assert mapping.acquired_at(_ds(ContentDate="20260314", ContentTime="07")) == dt.datetime(2026, 3, 14, 7,
                                                                                           tzinfo=tz)
    assert mapping.acquired_at(_ds(PatientID="x")) is None


@pytest.mark.django_db
def test_patient_for_matches_the_study_field_and_refuses_ambiguity() -> None:
    study = StudyFactory()
    one = PatientFactory(study=study, code="C1", hospital_number="H1")
    PatientFactory(study=study, code="C2", hospital_number="H2")
    PatientFactory(study=study, code="C3", hospital_number="H2")
    PatientFactory(study=StudyFactory(), code="C9", hospital_number="H9")  # another study's
    assert mapping.patient_for(study, " H1 ") == one
    assert mapping.patient_for(study, "H2") is None and mapping.patient_for(study, "H9") is None
    assert mapping.patient_for(study, "C1") is None and mapping.patient_for(study, "") is None
    study.dicom_patient_match = "code"
    assert mapping.patient_for(study, "C1") == one


@pytest.mark.django_db
def test_zone_and_exam_uid_follow_the_study_rules() -> None:
    study = StudyFactory()
    assert mapping.zone_for(study, "Lung R3 long axis") == "R3"
    assert mapping.zone_for(study, "Lung R9") is None and mapping.zone_for(study, "") is None
    study.dicom_zone_pattern = r"zone-(\d)"
    assert mapping.zone_for(study, "zone-3") is None  # '3' is no zone code
    study.dicom_zone_pattern = r"([LR]\d)$"
    assert mapping.zone_for(study, "anterior L2") == "L2"
    facts = mapping.instance_facts(_ds(ImageComments="left L4", SeriesDescription="x", PatientID="P"),
                                   StudyFactory(dicom_zone_tag="ImageComments"))
    assert facts.zone_value == "left L4" and facts.patient_id == "P" and facts.sop_instance_uid == ""
    uid = "1.2.3.4"
    assert mapping.exam_uid(study, uid) == deid.remap_uid(study.secret, uid) != uid
    study.deidentify = False
    assert mapping.exam_uid(study, uid) == uid and mapping.exam_uid(study, " ") == ""
