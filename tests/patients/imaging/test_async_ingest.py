"""Ingest in two halves: the request accepts (the upload stored with its sha256, a pending clip,
nothing decoded), the ingest worker's check makes it ready or failed. Claims are conditional;
failed uploads free their zone; several files in one field, bidirectional controls in names and
Study Instance UIDs of other studies are handled."""
from __future__ import annotations

import datetime as dt
import hashlib
import io
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from pydicom.uid import generate_uid
from rest_framework.test import APIClient

from lusweb.live import exam_group
from patients.audit.models import AuditEvent
from patients.imaging.accept import clip_accept
from patients.imaging.checks import IngestError
from patients.imaging.core.phantoms import phantom_cohort_clip, write_dicom, write_mp4
from patients.imaging.dispatch import claim_timeout, clips_recover
from patients.imaging.ingest import clip_ingest
from patients.imaging.models import ZoneClip
from patients.imaging.names import BIDI_CONTROLS, safe_filename
from patients.imaging.process import clip_process
from patients.imaging.signals import clip_stored
from patients.studies.models import Membership, Role
from tests.factories import ExamFactory, PatientFactory, StudyFactory, UserFactory
from tests.patients.conftest import png_bytes, stored_files, upload_checked

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(api_for: Callable[..., APIClient]) -> SimpleNamespace:
    study = StudyFactory(protocol="12-zone", deidentify=False)
    user = UserFactory()
    Membership.objects.create(study=study, user=user, role=Role.CLINICIAN)
    exam = ExamFactory(patient=PatientFactory(study=study))
    return SimpleNamespace(study=study, user=user, exam=exam, api=api_for(user))


@pytest.fixture
def announced() -> Iterator[list[ZoneClip]]:
    clips: list[ZoneClip] = []

    def receiver(sender: Any, clip: ZoneClip, **kwargs: Any) -> None:
        clips.append(clip)

    clip_stored.connect(receiver)
    yield clips
    clip_stored.disconnect(receiver)


def _accept(world: SimpleNamespace, data: bytes, zone: str = "R1", name: str = "a.png", **kwargs: Any) -> ZoneClip:
    return clip_accept(exam=world.exam, upload=io.BytesIO(data), zone=zone, by=world.user, filename=name,
                       dispatch=False, **kwargs).clip


def _dicom(uid: str, seed: int) -> bytes:
    buf = io.BytesIO()
    write_dicom(phantom_cohort_clip(1, seed=seed, n_frames=3, rows=64, columns=64), buf, study_uid=uid)
    return buf.getvalue()


def test_accept_stores_the_upload_and_a_pending_clip_only(world: SimpleNamespace,
                                                          announced: list[ZoneClip]) -> None:
    raw = png_bytes(1)
    clip = _accept(world, raw, zone="r2")
    assert (clip.status, clip.zone, clip.format) == ("pending", "R2", "png")
    assert (clip.sha256, clip.size_bytes) == (hashlib.sha256(raw).hexdigest(), len(raw))
    assert (clip.frame_count, clip.rows, clip.columns, clip.fps) == (None, None, None, None) and not clip.frames
    assert clip.file.name.endswith("/original.png")
    with clip.file.open("rb") as fh:
        assert fh.read() == raw  # the upload, through the storage API, byte for byte
    assert [str(p) for p in stored_files()] == [clip.file.path]
    # Not a clip yet for anyone but ingest: scoring, readings and pages read ready clips only.
    assert not ZoneClip.objects.exists() and not world.exam.clips.exists()
    assert list(ZoneClip.all_objects.all()) == [clip] and announced == []
    event = AuditEvent.objects.get(action="create", object_type="zoneclip")
    assert event.changes["status"] == {"old": None, "new": "pending"}


def test_the_check_makes_it_ready_and_announces_it_once(world: SimpleNamespace, announced: list[ZoneClip]) -> None:
    clip = _accept(world, png_bytes(2))
    processed = clip_process(clip_id=clip.pk)
    assert processed is not None and processed.error is None
    clip.refresh_from_db()
    assert (clip.status, clip.frame_count, clip.rows, clip.columns) == ("ready", 1, 64, 80)
    assert clip.load_frames().shape == (1, 64, 80) and clip.attempts == 1 and clip.checked_at is not None
    assert announced == [clip] and world.exam.clips.get() == clip
    assert clip_process(clip_id=clip.pk) is None  # a second message for it does nothing
    assert announced == [clip] and ZoneClip.all_objects.count() == 1


def test_claims_are_conditional_and_a_dead_workers_claim_is_taken_over(world: SimpleNamespace) -> None:
    clip = _accept(world, png_bytes(3))
    now = timezone.now()
    ZoneClip.all_objects.filter(pk=clip.pk).update(status="processing", claimed_at=now, attempts=1)
    assert clip_process(clip_id=clip.pk) is None  # a live worker has it
    assert ZoneClip.all_objects.get(pk=clip.pk).status == "processing"
    dead = now - dt.timedelta(seconds=claim_timeout() + 1)
    ZoneClip.all_objects.filter(pk=clip.pk).update(claimed_at=dead)
    processed = clip_process(clip_id=clip.pk)
    assert processed is not None and processed.clip.status == "ready" and processed.clip.attempts == 2


def test_a_file_that_keeps_killing_its_worker_fails(world: SimpleNamespace, settings: Any) -> None:
    settings.INGEST_MAX_ATTEMPTS = 2
    clip = _accept(world, png_bytes(4))
    dead = timezone.now() - dt.timedelta(seconds=claim_timeout() + 1)
    ZoneClip.all_objects.filter(pk=clip.pk).update(status="processing", claimed_at=dead, attempts=2)
    processed = clip_process(clip_id=clip.pk)
    assert processed is not None and processed.error is not None and processed.error.code == "worker_lost"
    assert "stopped the worker 2 times" in processed.error.message
    assert ZoneClip.all_objects.get(pk=clip.pk).status == "failed" and stored_files() == []


def test_a_failed_check_frees_the_zone_and_the_same_file_may_be_sent_again(world: SimpleNamespace) -> None:
    cut = png_bytes(5)[:60]  # a PNG signature, then nothing decodable
    first = _accept(world, cut)
    processed = clip_process(clip_id=first.pk)
    assert processed is not None and processed.error is not None
    failed = ZoneClip.all_objects.get(pk=first.pk)
    assert failed.status == "failed" and failed.error_code in ("truncated", "corrupt") and failed.error
    assert (failed.file.name, failed.source.name, failed.frames.name) == ("", "", "") and stored_files() == []
    again = _accept(world, cut)  # the same bytes: a new upload (the failed one is superseded)
    assert again.pk != first.pk and again.status == "pending"
    assert not ZoneClip.all_objects.filter(pk=first.pk).exists()
    assert AuditEvent.objects.filter(action="delete", object_id=str(first.pk), changes__superseded=True).exists()
    clip_process(clip_id=again.pk)
    good = _accept(world, png_bytes(6))  # and the zone takes a good file
    assert clip_process(clip_id=good.pk) is not None and ZoneClip.objects.get(zone="R1") == good


def test_a_zone_being_checked_takes_no_second_upload(world: SimpleNamespace) -> None:
    pending = _accept(world, png_bytes(7))
    files = stored_files()
    with pytest.raises(IngestError) as busy:
        _accept(world, png_bytes(8), replace=True)
    assert busy.value.code == "zone_busy" and busy.value.status == 409 and "being checked" in busy.value.message
    with pytest.raises(IngestError) as duplicate:
        _accept(world, png_bytes(7), zone="L1")
    assert duplicate.value.code == "duplicate_file" and "already stored as zone R1" in duplicate.value.message
    same = clip_accept(exam=world.exam, upload=io.BytesIO(png_bytes(7)), zone="R1", by=world.user, dispatch=False)
    assert (same.created, same.clip) == (False, pending)
    assert stored_files() == files and ZoneClip.all_objects.count() == 1


def test_several_files_in_one_field_are_refused(world: SimpleNamespace, client: Any) -> None:
    files = [SimpleUploadedFile("a.png", png_bytes(1)), SimpleUploadedFile("b.png", png_bytes(2))]
    response = world.api.post(f"/api/v1/exams/{world.exam.pk}/clips/", {"zone": "R1", "file": files},
                              format="multipart")
    assert response.status_code == 400 and response.data["code"] == "multiple_files"
    assert response.data["error"] == "the field 'file' holds 2 files; send one file per upload"
    other = world.api.post("/api/v1/clips/", {"exam": world.exam.pk, "zone": "R1", "file": [
        SimpleUploadedFile("a.png", png_bytes(1)), SimpleUploadedFile("b.png", png_bytes(2)),
        SimpleUploadedFile("c.png", png_bytes(3))]}, format="multipart")
    assert other.status_code == 400 and "'file' holds 3 files" in other.data["error"]
    client.force_login(world.user)
    page = client.post(f"/exams/{world.exam.pk}/", {"zone": "R1", "file": [
        SimpleUploadedFile("a.png", png_bytes(1)), SimpleUploadedFile("b.png", png_bytes(2))]}, follow=True)
    assert "Choose one file per upload (2 were sent)." in page.content.decode()
    assert ZoneClip.all_objects.count() == 0 and stored_files() == []


def test_bidirectional_controls_are_removed_from_file_names(world: SimpleNamespace, client: Any) -> None:
    up = upload_checked(world.api, world.exam, png_bytes(9), "\u202egnp.exe")  # shown as "exe.png" if kept
    assert up.ready and up.clip is not None and up.clip["original_filename"] == "gnp.exe"
    clip = ZoneClip.objects.get(pk=up.clip["id"])
    assert clip.file.name.endswith("/original.png")  # stored by its format, never by the uploaded name
    client.force_login(world.user)
    page = client.get(f"/clips/{clip.pk}/").content.decode()
    assert "gnp.exe" in page and not BIDI_CONTROLS & set(page)
    for control in sorted(BIDI_CONTROLS):
        assert safe_filename(f"scan{control}.dcm") == "scan.dcm"
    assert safe_filename("C:\\Users\\ward\\\u2067Doe\u2069.mp4") == "Doe.mp4"


def test_the_study_instance_uid_guard_is_scoped_to_the_study(world: SimpleNamespace) -> None:
    uid = generate_uid()
    # Another study, of which the caller is not a member, already holds this Study Instance UID.
    elsewhere = StudyFactory(protocol="12-zone", deidentify=False, name="Elsewhere ward")
    outsider = UserFactory()
    Membership.objects.create(study=elsewhere, user=outsider, role=Role.CLINICIAN)
    foreign_exam = ExamFactory(patient=PatientFactory(study=elsewhere, code="ELSE-7"))
    clip_ingest(exam=foreign_exam, upload=io.BytesIO(_dicom(uid, 1)), zone="R1", by=outsider)
    # It does not block the caller's upload to their own study.
    mine = upload_checked(world.api, world.exam, _dicom(uid, 2), "a.dcm")
    assert mine.ready, mine.clip
    # A second patient of the caller's study with that UID is refused, naming this study's exam only.
    second = ExamFactory(patient=PatientFactory(study=world.study))
    refused = upload_checked(world.api, second, _dicom(uid, 3), "b.dcm")
    assert refused.clip is not None and refused.clip["code"] == "foreign_study_instance", refused.clip
    error = refused.clip["error"]
    assert error == (f"this DICOM belongs to Study Instance UID {uid}, already recorded in this study for another "
                     f"patient's exam (exam {world.exam.pk}); refusing to mix patients")
    assert f"exam {foreign_exam.pk}" not in error and "Elsewhere" not in error and "ELSE-7" not in error


def test_videos_have_no_study_instance_uid_to_compare(api_for: Callable[..., APIClient]) -> None:
    study = StudyFactory(protocol="12-zone")  # de-identifying: a video becomes a DICOM with generated UIDs
    user = UserFactory()
    Membership.objects.create(study=study, user=user, role=Role.CLINICIAN)
    buf = io.BytesIO()
    write_mp4(phantom_cohort_clip(2, seed=4, n_frames=6, rows=64, columns=64), buf)
    for _ in range(2):  # the same video for two patients: nothing to compare, nothing refused
        up = upload_checked(api_for(user), ExamFactory(patient=PatientFactory(study=study)), buf.getvalue(), "v.mp4")
        assert up.ready, up.clip
    assert ZoneClip.objects.filter(exam__patient__study=study).count() == 2


def test_the_pages_are_told_when_a_clip_is_checked(world: SimpleNamespace,
                                                   django_capture_on_commit_callbacks: Any) -> None:
    layer = get_channel_layer()
    assert layer is not None
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(exam_group(world.exam.pk), channel)
    good, bad = _accept(world, png_bytes(10)), _accept(world, png_bytes(11)[:60], zone="L1")
    with django_capture_on_commit_callbacks(execute=True):
        clip_process(clip_id=good.pk)
        clip_process(clip_id=bad.pk)


    async def two() -> list[dict[str, Any]]:  # one event loop for both receives (channels_redis buffers per loop)
        return [(await layer.receive(channel))["message"] for _ in range(2)]

    messages = async_to_sync(two)()
    async_to_sync(layer.group_discard)(exam_group(world.exam.pk), channel)
    failed = ZoneClip.all_objects.get(pk=bad.pk)
    assert messages == [{"type": "clip", "clip": good.pk, "zone": "R1", "status": "ready"},
                        {"type": "clip", "clip": bad.pk, "zone": "L1", "status": "failed", "error": failed.error,
                         "code": failed.error_code}]


def test_recovery_sends_what_never_left_and_what_was_lost(world: SimpleNamespace, settings: Any) -> None:
    never = _accept(world, png_bytes(12))  # accepted while the broker was down: never sent
    long_ago = _accept(world, png_bytes(13), zone="R2")
    stale = _accept(world, png_bytes(14), zone="R3")
    live = _accept(world, png_bytes(15), zone="R4")
    now = timezone.now()
    ZoneClip.all_objects.filter(pk=long_ago.pk).update(
        dispatched_at=now - dt.timedelta(seconds=settings.INGEST_REDISPATCH_SECONDS + 1))
    ZoneClip.all_objects.filter(pk=stale.pk).update(status="processing", dispatched_at=now - dt.timedelta(hours=1),
                                                    claimed_at=now - dt.timedelta(seconds=claim_timeout() + 1))
    ZoneClip.all_objects.filter(pk=live.pk).update(status="processing", dispatched_at=now, claimed_at=now)
    try:
        assert clips_recover() == 3
        sent = {c.pk: c.dispatched_at for c in ZoneClip.all_objects.all()}
        assert all(sent[c.pk] is not None and sent[c.pk] >= now for c in (never, long_ago, stale))
        assert sent[live.pk] == now
        assert clips_recover() == 0  # sent just now: not again
    finally:
        if settings.REDIS_URL:  # leave no message for a later worker
            import redis

            redis.Redis.from_url(settings.REDIS_URL).delete("ingest")


def test_a_failed_upload_is_removed_from_the_exam_page(world: SimpleNamespace, client: Any,
                                                       django_capture_on_commit_callbacks: Any) -> None:
    failed = _accept(world, png_bytes(16)[:60])
    clip_process(clip_id=failed.pk)
    client.force_login(world.user)
    html = client.get(f"/exams/{world.exam.pk}/").content.decode()
    row = html[html.index('id="zone-R1"'):]
    row = row[:row.index("</tr>")]
    failed.refresh_from_db()
    assert 'data-upload-status="failed"' in row and failed.error in row and f"/clips/{failed.pk}/delete/" in row
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(f"/clips/{failed.pk}/delete/").status_code == 302
    assert not ZoneClip.all_objects.exists()
    assert AuditEvent.objects.filter(action="delete", object_id=str(failed.pk)).exists()


def test_a_clip_deleted_while_it_is_checked_leaves_nothing(world: SimpleNamespace, monkeypatch: pytest.MonkeyPatch,
                                                           django_capture_on_commit_callbacks: Any,
                                                           announced: list[ZoneClip]) -> None:
    from patients.imaging import process
    from patients.imaging.services import clip_delete

    clip = _accept(world, png_bytes(17))
    real = process.decode_upload

    def deleted_meanwhile(checked: ZoneClip) -> Any:  # the user removes the upload while it is decoded
        decoded = real(checked)
        clip_delete(clip=ZoneClip.all_objects.get(pk=checked.pk), by=world.user)
        return decoded

    monkeypatch.setattr(process, "decode_upload", deleted_meanwhile)
    with django_capture_on_commit_callbacks(execute=True):
        assert clip_process(clip_id=clip.pk) is None
    assert not ZoneClip.all_objects.exists() and stored_files() == [] and announced == []


def test_a_transient_database_error_puts_the_clip_back_for_the_retry(world: SimpleNamespace,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from django.db import OperationalError

    from patients.imaging import process

    clip = _accept(world, png_bytes(18))
    real = process.decode_upload

    def database_gone(checked: ZoneClip) -> Any:
        real(checked)
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(process, "decode_upload", database_gone)
    with pytest.raises(OperationalError):
        clip_process(clip_id=clip.pk)
    back = ZoneClip.all_objects.get(pk=clip.pk)
    assert (back.status, back.claimed_at, back.attempts) == ("pending", None, 0)
    assert [str(p) for p in stored_files()] == [back.file.path]  # the upload waits for the retry
    monkeypatch.setattr(process, "decode_upload", real)
    processed = clip_process(clip_id=clip.pk)  # the task's retry
    assert processed is not None and processed.clip.status == "ready" and processed.clip.attempts == 1
