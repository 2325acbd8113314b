"""The C-STORE statuses the receiver answers with, and its presentation contexts (no network)."""
from __future__ import annotations

import pytest
from pydicom.dataset import Dataset

from patients.imaging.models import ZoneClip
from patients.receiving import scp
from patients.receiving.mapping import IMAGE_SOP_CLASSES
from patients.studies.models import Study
from tests.factories import PatientFactory, StudyFactory
from tests.patients.receiving.receiving_kit import COMPREHENSIVE_SR, phantom, structured_report

pytestmark = pytest.mark.django_db


@pytest.fixture
def study() -> Study:
    study = StudyFactory(dicom_calling_aets=["US01"])
    PatientFactory(study=study, hospital_number="H1")
    return study


def _status(answer: int | Dataset) -> tuple[int, str]:
    if isinstance(answer, int):
        return answer, ""
    return int(answer.Status), str(answer.ErrorComment)


def test_each_refusal_answers_with_its_status_and_a_comment(study: Study) -> None:
    data = phantom(patient_id="H1", zone="R1")
    assert _status(scp._receive("US01", data)) == (scp.SUCCESS, "")
    code, comment = _status(scp._receive("US01", structured_report(patient_id="H1")))
    assert code == 0x0122 and comment.startswith("Comprehensive SR Storage is not an image") and len(comment) <= 64
    assert _status(scp._receive("US01", data[:-400]))[0] == 0xA900  # pixel data cut short
    assert _status(scp._receive("US01", b"\x00" * 128 + b"DICM" + b"\xff" * 64))[0] == 0xC000
    assert ZoneClip.all_objects.count() == 1


def test_a_caller_no_study_or_several_studies_allow_is_not_authorised(study: Study) -> None:
    data = phantom(patient_id="H1", zone="R1")
    assert _status(scp._receive("NOBODY", data)) == (0x0124, "no study allows calling AE title NOBODY")
    # Two studies allowing one AE title (set around the settings' check): neither gets the instance.
    Study.objects.filter(pk=StudyFactory().pk).update(dicom_calling_aets=["US01"])
    assert _status(scp._receive("US01", data)) == (0x0124, "several studies allow calling AE title US01")
    assert not ZoneClip.all_objects.exists()


def test_archived_studies_allow_no_caller(study: Study) -> None:
    ae = scp.receiver_ae()
    assert ae.require_calling_aet == ["US01"]
    Study.objects.filter(pk=study.pk).update(archived=True)
    assert ae.require_calling_aet == [scp._NOBODY] and len(scp._NOBODY) > 16


def test_images_in_every_decodable_syntax_and_other_storage_only_to_refuse() -> None:
    contexts = {str(cx.abstract_syntax): [str(t) for t in cx.transfer_syntax]
                for cx in scp.receiver_ae("TEST").supported_contexts}
    for uid in IMAGE_SOP_CLASSES:
        # Explicit VR Big Endian (1.2.840.10008.1.2.2) too: its stored copy is made little endian.
        assert {"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.90",
                "1.2.840.10008.1.2.5", "1.2.840.10008.1.2", "1.2.840.10008.1.2.1",
                "1.2.840.10008.1.2.2"} <= set(contexts[uid])
    assert contexts[COMPREHENSIVE_SR] and "1.2.840.10008.1.1" in contexts  # SR (to refuse), Verification
