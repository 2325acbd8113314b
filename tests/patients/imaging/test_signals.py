"""``patients.imaging.signals.clip_stored``: sent once per stored clip, inside the ingest
transaction, and never for an upload that is refused or already stored."""
from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest

from lusweb.errors import ServiceError
from patients.imaging.ingest import IngestError, clip_ingest
from patients.imaging.models import ZoneClip
from patients.imaging.signals import clip_stored
from patients.records.models import Exam
from patients.studies.models import Membership, Role
from tests.factories import ExamFactory, PatientFactory, StudyFactory, UserFactory
from tests.patients.conftest import png_bytes, stored_files

pytestmark = pytest.mark.django_db


@pytest.fixture
def exam_and_user() -> tuple[Exam, Any]:
    study = StudyFactory(protocol="12-zone", deidentify=False)
    user = UserFactory()
    Membership.objects.create(study=study, user=user, role=Role.CLINICIAN)
    return ExamFactory(patient=PatientFactory(study=study)), user


@pytest.fixture
def announced() -> Iterator[list[dict[str, Any]]]:
    calls: list[dict[str, Any]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        calls.append({"sender": sender, **kwargs})

    clip_stored.connect(receiver)
    yield calls
    clip_stored.disconnect(receiver)


def _ingest(exam: Exam, user: Any, seed: int, zone: str = "R1", **kwargs: Any) -> Any:
    return clip_ingest(exam=exam, upload=io.BytesIO(png_bytes(seed)), zone=zone, by=user, filename="x.png", **kwargs)


def test_sent_once_per_stored_clip_with_the_clip_and_the_user(exam_and_user: tuple[Exam, Any],
                                                              announced: list[dict[str, Any]]) -> None:
    exam, user = exam_and_user
    first = _ingest(exam, user, 1).clip
    second = _ingest(exam, user, 2, zone="L1").clip
    assert [(c["sender"], c["clip"], c["by"]) for c in announced] == [(ZoneClip, first, user), (ZoneClip, second, user)]
    replaced = _ingest(exam, user, 3, replace=True).clip  # a new clip replacing R1 is stored too
    assert announced[-1]["clip"] == replaced and len(announced) == 3


def test_not_sent_for_a_refused_or_already_stored_upload(exam_and_user: tuple[Exam, Any],
                                                         announced: list[dict[str, Any]]) -> None:
    exam, user = exam_and_user
    _ingest(exam, user, 1)
    assert _ingest(exam, user, 1).created is False  # the same bytes again: nothing new stored
    with pytest.raises(IngestError):
        _ingest(exam, user, 2, zone="Z9")  # not a zone of the protocol
    with pytest.raises(IngestError):
        _ingest(exam, user, 3)  # zone taken, no replace
    with pytest.raises(IngestError):
        clip_ingest(exam=exam, upload=io.BytesIO(b"not an image"), zone="L1", by=user, filename="x.bin")
    assert len(announced) == 1


def test_sent_inside_the_ingest_transaction(exam_and_user: tuple[Exam, Any]) -> None:
    """A receiver sees the saved clip, and one that refuses undoes the whole upload."""
    exam, user = exam_and_user
    seen: list[bool] = []

    def refuse(sender: Any, clip: ZoneClip, **kwargs: Any) -> None:
        seen.append(ZoneClip.objects.filter(pk=clip.pk).exists())
        raise ServiceError("refused by a receiver", code="refused")

    clip_stored.connect(refuse)
    try:
        with pytest.raises(ServiceError, match="refused by a receiver"):
            _ingest(exam, user, 1)
    finally:
        clip_stored.disconnect(refuse)
    assert seen == [True]
    assert not ZoneClip.objects.filter(exam=exam).exists() and stored_files() == []
