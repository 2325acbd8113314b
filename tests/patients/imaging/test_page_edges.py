"""Rough edges of the clip page and the exam page's upload form (issue 16)."""
from __future__ import annotations

from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from patients.imaging.models import ZoneClip
from patients.readings.services import reading_create
from tests.patients.readings.ward import Ward

pytestmark = pytest.mark.django_db


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_clip_page_shows_the_zone_score_of_record_and_its_readings(ward: Ward) -> None:
    clip = ward.clips["R1"]  # the AI read 3
    client = _client(ward.clinician)
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
    response = _client(ward.clinician).post(f"/exams/{ward.exam.pk}/", {
        "zone": "R1", "file": SimpleUploadedFile("r1.mp4", b"", content_type="video/mp4"), "kind": "upload"})
    said = [str(m) for m in get_messages(response.wsgi_request)]
    assert said == ["r1.mp4 is empty (0 bytes): nothing to store. Choose the clip's file again."]
    assert ZoneClip.all_objects.count() == before and empty.count() == 1
    response = _client(ward.clinician).post(f"/exams/{ward.exam.pk}/", {"zone": "R1", "kind": "upload"})
    assert [str(m) for m in get_messages(response.wsgi_request)] == ["Upload refused: choose a file."]
