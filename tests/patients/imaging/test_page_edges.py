"""Rough edges of the clip page and the exam page's upload form (issue 16)."""
from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile

from patients.imaging.ingest import clip_ingest
from patients.imaging.models import ZoneClip
from patients.readings.services import reading_create
from patients.studies.models import Role
from tests.conftest import signed_in
from tests.factories import ExamFactory, MembershipFactory, PatientFactory, StudyFactory, UserFactory
from tests.patients.readings.ward import Ward

pytestmark = pytest.mark.django_db


def test_the_clip_page_shows_the_zone_score_of_record_and_its_readings(ward: Ward) -> None:
    clip = ward.clips["R1"]  # the AI read 3
    client = signed_in(ward.clinician)
    page = client.get(f"/clips/{clip.pk}/").content.decode()
    assert 'data-score="3" data-source="ai"' in page and "AI, not reviewed" in page
    assert "none yet: the score of record is the AI" in page
    reading_create(clip=clip, by=ward.clinician, score=1, comment="separate B-lines")
    page = client.get(f"/clips/{clip.pk}/").content.decode()
    assert 'id="clip-record" data-score="1" data-source="clinician"' in page and "read by rw-clinician" in page
    readings = page[page.index('id="clip-readings"'):]
    assert 'data-score="1" data-kind="clinician"' in readings and "separate B-lines" in readings
    assert '<td id="clip-ai"><span class="score s3">3</span>' in page  # the AI's score stays beside it


def test_an_empty_file_is_answered_with_what_is_wrong(ward: Ward) -> None:
    empty = ZoneClip.objects.filter(exam=ward.exam, zone="R1")
    before = ZoneClip.all_objects.count()
    response = signed_in(ward.clinician).post(f"/exams/{ward.exam.pk}/", {
        "zone": "R1", "file": SimpleUploadedFile("r1.mp4", b"", content_type="video/mp4"), "kind": "upload"})
    said = [str(m) for m in get_messages(response.wsgi_request)]
    assert said == ["r1.mp4 is empty (0 bytes): nothing to store. Choose the clip's file again."]
    assert ZoneClip.all_objects.count() == before and empty.count() == 1
    response = signed_in(ward.clinician).post(f"/exams/{ward.exam.pk}/", {"zone": "R1", "kind": "upload"})
    assert [str(m) for m in get_messages(response.wsgi_request)] == ["Upload refused: choose a file."]


def _mp4(frames: int) -> bytes:
    import av  # lazy: only these tests write video

    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), (40 + i * 15) % 250, dtype=np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buf.getvalue()


def test_an_mp4_clip_takes_the_exam_device_and_a_short_one_is_flagged(settings: Any) -> None:
    settings.SHORT_CLIP_FRAMES = 10
    study = StudyFactory(deidentify=False)
    user = UserFactory()
    MembershipFactory(study=study, user=user, role=Role.CLINICIAN)
    exam = ExamFactory(patient=PatientFactory(study=study), device="Butterfly iQ3", probe="linear L1")
    short = clip_ingest(exam=exam, upload=io.BytesIO(_mp4(7)), zone="R1", by=user, filename="r1.mp4").clip
    long = clip_ingest(exam=exam, upload=io.BytesIO(_mp4(12)), zone="R2", by=user, filename="r2.mp4").clip
    assert (short.model_name, short.transducer, short.manufacturer) == ("Butterfly iQ3", "linear L1", "")
    assert short.frame_count == 7 and short.warnings == [
        "very short clip: 7 frames (fewer than 10); its score rests on little of the breathing cycle"]
    assert long.frame_count == 12 and long.warnings == []
    client = signed_in(user)
    zones = client.get(f"/exams/{exam.pk}/").content.decode()
    assert '<td class="device"> Butterfly iQ3' in zones and zones.count('class="warning clip-warning"') == 1
    assert "Accepted with a warning: very short clip: 7 frames" in client.get(f"/clips/{short.pk}/").content.decode()
    assert client.get(f"/api/v1/clips/{short.pk}/").json()["warnings"][0].startswith("very short clip: 7 frames")
