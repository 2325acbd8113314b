"""Prepared clips kept beside the frame cache (``scoring.prepared``): a stored clip is sent, once
its ingest transaction commits, to be prepared for the study's scorer on the ingest queue; a scoring job reads the prepared clips (and
prepares, and keeps, those that have none); the scores are the same bits; a damaged file is made
again; deleting the clip removes them."""
from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest

from patients.imaging.core.phantoms import phantom_cohort_clip, write_dicom
from patients.imaging.ingest import clip_ingest
from patients.imaging.models import ClipStatus, ZoneClip
from patients.records.models import Exam
from patients.studies.models import Membership, Role
from scoring import pipeline, prepared, runtime, services, tasks
from scoring.core.features.prepared import prepared_read
from scoring.models import ClipScore, ModelVersion
from scoring.prepared import CLIP_PREPARE_TASK, PREFIX, clip_prepared_read, prepared_name
from tests.factories import ExamFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def version() -> ModelVersion:
    return services.model_version_register(activate=True)


def _upload(exam: Exam, user: Any, zone: str, score: int, n_frames: int) -> ZoneClip:
    buffer = io.BytesIO()
    write_dicom(phantom_cohort_clip(score, seed=score + 3, n_frames=n_frames, rows=120, columns=110), buffer)
    buffer.seek(0)
    return clip_ingest(exam=exam, upload=buffer, zone=zone, by=user, filename=f"{zone}.dcm").clip


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[object, ...], str]]:
    """The messages ``scoring.prepared`` sends, run here as the worker would run them."""
    messages: list[tuple[str, tuple[object, ...], str]] = []

    def send(name: str, *, args: tuple[object, ...], queue: str) -> bool:
        messages.append((name, args, queue))
        assert name == CLIP_PREPARE_TASK
        tasks.clip_prepare(*args)
        return True

    monkeypatch.setattr(prepared, "task_send", send)
    return messages


def _exam_with_clips(captured: Any, *, prepare: bool, settings: Any) -> tuple[Exam, list[ZoneClip]]:
    settings.SCORING_PREPARE_ON_INGEST = prepare
    exam, user = ExamFactory(), UserFactory()
    Membership.objects.create(study=exam.patient.study, user=user, role=Role.CLINICIAN)
    with captured(execute=True):
        clips = [_upload(exam, user, "R1", 0, 6), _upload(exam, user, "L1", 3, 9)]
    return exam, clips


def _score(exam: Exam, version: ModelVersion, reason: str) -> dict[str, np.ndarray]:
    job = services.scoring_job_request(exam=exam, reason=reason, model_version=version)
    assert pipeline.scoring_job_execute(job_id=job.pk, worker="w") == "succeeded"
    return {cs.zone: np.asarray(cs.frame_probs) for cs in ClipScore.objects.filter(job=job)}


def test_ingest_sends_the_stored_clip_to_be_prepared_for_the_studys_scorer(
        version: ModelVersion, settings: Any, django_capture_on_commit_callbacks: Any, sent: list[Any]) -> None:
    _exam, clips = _exam_with_clips(django_capture_on_commit_callbacks, prepare=True, settings=settings)
    # One message per clip, on the ingest queue (taken before any scoring job), once it committed.
    assert sent == [(CLIP_PREPARE_TASK, (clip.pk,), "ingest") for clip in clips]
    assert tasks.clip_prepare(clips[0].pk) == "kept"  # a second delivery finds it prepared
    scorer = runtime.get_scorer(version.weights)
    for clip in clips:
        clip.refresh_from_db()
        stored = clip_prepared_read(clip=clip, scorer=scorer)
        assert stored is not None and stored.key == scorer.prepare_key
        fresh = scorer.prepare_views(clip.load_frames())
        assert np.array_equal(stored.x, fresh.x) and np.array_equal(stored.hand, fresh.hand)
        assert np.array_equal(stored.hires_images, fresh.hires_images)


def test_nothing_is_sent_when_ingest_preparation_is_off(
        version: ModelVersion, settings: Any, django_capture_on_commit_callbacks: Any, sent: list[Any]) -> None:
    _exam, clips = _exam_with_clips(django_capture_on_commit_callbacks, prepare=False, settings=settings)
    scorer = runtime.get_scorer(version.weights)
    assert sent == []
    assert all(not clip.frames.storage.exists(prepared_name(clip, scorer.prepare_key)) for clip in clips)


def test_a_clip_that_is_gone_or_not_ready_is_not_prepared(version: ModelVersion, settings: Any,
                                                          django_capture_on_commit_callbacks: Any) -> None:
    _exam, clips = _exam_with_clips(django_capture_on_commit_callbacks, prepare=False, settings=settings)
    assert tasks.clip_prepare(clips[0].pk + 1000) == "gone"
    ZoneClip.all_objects.filter(pk=clips[0].pk).update(status=ClipStatus.FAILED)
    assert tasks.clip_prepare(clips[0].pk) == "gone"
    assert tasks.clip_prepare(clips[1].pk) == "prepared"


def test_a_job_keeps_what_it_prepares_and_the_next_job_reads_only_that(
        version: ModelVersion, settings: Any, django_capture_on_commit_callbacks: Any) -> None:
    exam, clips = _exam_with_clips(django_capture_on_commit_callbacks, prepare=False, settings=settings)
    first = _score(exam, version, "test")
    scorer = runtime.get_scorer(version.weights)
    for clip in clips:  # the job kept each clip prepared; then the frame caches go away
        assert clip_prepared_read(clip=clip, scorer=scorer) is not None
        clip.frames.storage.delete(clip.frames.name)
    again = _score(exam, version, "rescore")  # reads the prepared clips alone
    assert set(again) == set(first) == {"R1", "L1"}
    assert all(np.array_equal(again[zone], first[zone]) for zone in first)


def _prepared_file(captured: Any, settings: Any, version: ModelVersion, zone: int
                   ) -> tuple[Exam, list[ZoneClip], Any, str]:
    """An exam of two clips prepared on ingest; the storage and name of clip ``zone``'s file."""
    exam, clips = _exam_with_clips(captured, prepare=True, settings=settings)
    clip = clips[zone]
    return exam, clips, clip.frames.storage, prepared_name(clip, runtime.get_scorer(version.weights).prepare_key)


def test_a_damaged_prepared_file_is_prepared_again(
        version: ModelVersion, settings: Any, django_capture_on_commit_callbacks: Any, sent: list[Any]) -> None:
    exam, clips, storage, name = _prepared_file(django_capture_on_commit_callbacks, settings, version, 1)
    scorer = runtime.get_scorer(version.weights)
    clip = clips[1]
    with storage.open(name, "rb") as fh:
        whole = fh.read()
    storage.delete(name)
    storage.save(name, io.BytesIO(whole[: len(whole) // 3]))
    assert clip_prepared_read(clip=clip, scorer=scorer) is None
    scores = _score(exam, version, "test")
    assert len(scores["L1"]) == 9
    with storage.open(name, "rb") as fh:  # replaced by the whole prepared clip, under the same name
        assert prepared_read(fh, scorer.prepare_key, scorer.cfg) is not None
    assert [n for n in storage.listdir(name.rsplit("/", 1)[0])[1] if n.startswith(PREFIX)] == [name.rsplit("/", 1)[1]]


def test_deleting_the_clip_removes_its_prepared_files(
        version: ModelVersion, settings: Any, django_capture_on_commit_callbacks: Any, sent: list[Any]) -> None:
    _exam, clips, storage, name = _prepared_file(django_capture_on_commit_callbacks, settings, version, 0)
    scorer = runtime.get_scorer(version.weights)
    clip = clips[0]
    assert storage.exists(name)
    with django_capture_on_commit_callbacks(execute=True):
        ZoneClip.all_objects.filter(pk=clip.pk).delete()
    assert not storage.exists(name)
    assert storage.exists(prepared_name(clips[1], scorer.prepare_key))  # the other zone's stays
