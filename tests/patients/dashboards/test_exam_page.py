"""The exam page (``patients.dashboards.exam_page``): each zone's score of record with its source
beside the AI's, the review card (status, signature, history, Sign, blind read) and the reading
form; researchers see no comment and no date."""
from __future__ import annotations

import re

import pytest
from django.contrib.messages import get_messages

from patients.readings.models import BlindRead, ReadingSource, ZoneReading
from patients.readings.services import blind_read_start, exam_sign, reading_create
from tests.conftest import signed_in
from tests.patients.readings.ward import AI, Ward, read_all

pytestmark = pytest.mark.django_db

ISO_DATE = re.compile(r"\b20\d\d-\d\d-\d\d")


def _row(html: str, zone: str) -> str:
    row = html[html.index(f'<tr data-zone="{zone}"'):]
    return row[: row.index("</tr>")]


def _text(html: str, element_id: str) -> str:
    start = html.index(f'id="{element_id}"')
    return re.sub(r"<[^>]+>", "", html[html.index(">", start) + 1:html.index("</", start)]).strip()


def test_zones_show_the_record_with_its_source_beside_the_ai(ward: Ward) -> None:
    reading_create(clip=ward.clips["R1"], by=ward.clinician, score=1, findings={"b_lines": True},
                   comment="not confluent")
    html = signed_in(ward.clinician).get(f"/exams/{ward.exam.pk}/").content.decode()
    r1, r2 = _row(html, "R1"), _row(html, "R2")
    assert 'data-score="1" data-source="clinician"' in r1 and "read by rw-clinician" in r1
    assert "findings: B-lines" in r1 and "“not confluent”" in r1 and "AI, not reviewed" not in r1
    assert re.search(r'<td class="ai"><span class="score s3" title="AI · P\(score', r1)  # the AI's 3 beside it
    assert 'data-score="1" data-source="ai"' in r2 and "AI, not reviewed" in r2
    assert _text(html, "exam-luss") == f"{sum(AI.values()) - 2}/36" and _text(html, "exam-luss-ai") == str(sum(AI.values()))
    assert _text(html, "exam-worst") == "L5"  # R1 (the AI's 3) is no longer the worst zone
    assert "<strong>1 of 12</strong> zones read by a clinician" in html
    assert 'data-zone="R1" data-score="1" data-source="clinician"' in html  # the chest diagram
    assert _text(html, "review-state") == "draft" and "not signed yet" in html
    assert 'id="sign-form"' in html and 'id="blind-form"' not in html  # read openly already: no blind read
    assert "waiting for a reading: <span id=\"unread-zones\">R2, R3" in html


def test_researchers_see_the_record_without_comments_dates_or_forms(ward: Ward) -> None:
    read_all(ward, ward.clinician)
    reading_create(clip=ward.clips["R1"], by=ward.clinician, score=1, comment="Dr Secretcomment was here")
    exam_sign(exam=ward.exam, by=ward.clinician)
    html = signed_in(ward.researcher).get(f"/exams/{ward.exam.pk}/").content.decode()
    assert "Secretcomment" not in html and not ISO_DATE.search(html)
    assert re.search(r"read by rw-clinician, day \d+\.\d<", _row(html, "R1"))  # days since admission
    assert _text(html, "review-state") == "reviewed" and re.fullmatch(r"day \d+\.\d", _text(html, "signed-at"))
    assert 'id="history"' in html and f"LUSS {sum(AI.values()) - 2}" in html  # the signed record, in the history
    assert "clip-read" not in html and 'action="/clips/' not in html and 'id="sign-form"' not in html


def test_the_reading_form_stores_a_reading(ward: Ward) -> None:
    clip = ward.clips["R4"]
    url = f"/clips/{clip.pk}/read/"
    done = signed_in(ward.clinician).post(url, {"score": "1", "findings": ["b_lines", "effusion"], "comment": " ok "})
    assert done.status_code == 302 and done["Location"] == f"/exams/{ward.exam.pk}/#zone-R4"
    reading = ZoneReading.objects.get(clip=clip, source=ReadingSource.CLINICIAN)
    assert (reading.score, reading.comment, reading.rater_name) == (1, "ok", "rw-clinician")
    assert reading.findings == {"a_lines": False, "b_lines": True, "confluent_b_lines": False, "consolidation": False,
                                "pleural_irregularity": False, "effusion": True}
    bad = signed_in(ward.clinician).post(url, {"score": "7"})
    assert [str(m) for m in get_messages(bad.wsgi_request)][-1].startswith("Reading: score:")
    assert signed_in(ward.researcher).post(url, {"score": "1"}).status_code == 403
    assert signed_in(ward.users["outsider"]).post(url, {"score": "1"}).status_code == 404
    assert ZoneReading.objects.filter(clip=clip, source=ReadingSource.CLINICIAN).count() == 1
    # The form starts from the clinician's reading: score 1 and its findings ticked.
    row = _row(signed_in(ward.clinician).get(f"/exams/{ward.exam.pk}/").content.decode(), "R4")
    assert 'value="1" checked' in row and 'value="effusion" checked' in row and 'value="a_lines">' in row


def test_review_card_sign_and_blind_controls(ward: Ward) -> None:
    second = ward.users["second"]
    html = signed_in(second).get(f"/exams/{ward.exam.pk}/").content.decode()
    assert 'id="blind-form"' in html and "Read blind" in html
    blind_read_start(exam=ward.exam, by=second)
    html = signed_in(second).get(f"/exams/{ward.exam.pk}/").content.decode()
    assert 'id="blind-banner"' in html and 'id="blind-submit"' in html and 'id="sign-form"' not in html
    assert "hidden (blind read)" in _row(html, "R1") and "not read yet" in _row(html, "R1")
    assert "ai-unreviewed" not in html and 'id="exam-luss-ai"' not in html
    read_all(ward, second)
    signed_in(second).post(f"/exams/{ward.exam.pk}/blind/submit/")
    assert not BlindRead.objects.get(reader=second).is_open
    html = signed_in(second).get(f"/exams/{ward.exam.pk}/").content.decode()
    assert 'id="blind-done"' in html and 'id="blind-banner"' not in html
    exam_sign(exam=ward.exam, by=second)
    html = signed_in(ward.clinician).get(f"/exams/{ward.exam.pk}/").content.decode()
    assert _text(html, "review-state") == "reviewed" and _text(html, "signed-by") == "rw-second"
    assert 'id="sign-form"' not in html  # nothing to sign again
    reading_create(clip=ward.clips["R2"], by=ward.clinician, score=3)
    html = signed_in(ward.clinician).get(f"/exams/{ward.exam.pk}/").content.decode()
    assert _text(html, "review-state") == "amended" and "Sign the exam again" in html
    history = html[html.index('id="history"'):]
    assert history.index("R2") < history.index("signed")  # newest first
