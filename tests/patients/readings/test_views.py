"""The pages' form posts: sign, blind read, adjudication (and their refusals), and the agreement
page's disagreements."""
from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.contrib.messages import get_messages

from patients.readings.models import BlindRead, ExamSignature, ReadingSource, ZoneReading
from patients.readings.services import reading_create
from tests.conftest import signed_in
from tests.patients.readings.ward import Ward, read_all

pytestmark = pytest.mark.django_db


def _messages(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_sign_and_blind_read_forms(ward: Ward) -> None:
    url = f"/exams/{ward.exam.pk}/"
    assert signed_in(ward.researcher).post(url + "sign/").status_code == 403
    assert signed_in(ward.users["outsider"]).post(url + "sign/").status_code == 404
    clinician = signed_in(ward.clinician)
    refused = clinician.post(url + "sign/")
    assert refused.status_code == 302 and refused["Location"] == url
    assert _messages(refused) == ["zones R1, R2, R3, R4, R5, R6, L1, L2, L3, L4, L5, L6 have no clinician reading"]
    read_all(ward, ward.clinician)
    assert _messages(clinician.post(url + "sign/"))[-1] == "Exam signed." and ExamSignature.objects.count() == 1
    second = signed_in(ward.users["second"])
    second.post(url + "blind/")
    assert BlindRead.objects.get(reader=ward.users["second"]).is_open
    assert "no reading of yours" in _messages(second.post(url + "blind/submit/"))[-1]
    page = second.get(url)
    assert page.status_code == 200 and page.context["blind_read"].is_open and page.context["severity"] is None
    assert page.context["scores"]["luss"] is None and page.context["review"].status == "reviewed"
    clip = ward.clips["R1"]
    assert second.get(f"/clips/{clip.pk}/gradcam/0.png").status_code == 403
    viewer = second.get(f"/clips/{clip.pk}/viewer/")
    current = viewer.context["data"]["current"]
    assert (current["model_version"], current["frame_probs"], current["record"]["score"]) == (None, [], None)


def test_adjudication_form_and_the_agreement_page(ward: Ward) -> None:
    clip = ward.clips["R4"]
    reading_create(clip=clip, by=ward.clinician, score=1)
    reading_create(clip=clip, by=ward.users["second"], score=3)
    page = signed_in(ward.researcher).get(f"/studies/{ward.study.pk}/agreement/")
    assert page.status_code == 200 and not page.context["can_adjudicate"]
    [row] = page.context["disagreements"]
    assert (row["zone"], row["readings"], row["acquired_at"], row["label"]) == (
        "R4", {"rw-clinician": 1, "rw-second": 3}, None, "day 2.4")
    assert signed_in(ward.clinician).post(f"/clips/{clip.pk}/adjudicate/", {"score": 2}).status_code == 403
    admin = signed_in(ward.admin)
    assert admin.get(f"/studies/{ward.study.pk}/agreement/").context["can_adjudicate"]
    back = f"/studies/{ward.study.pk}/agreement/"
    done = admin.post(f"/clips/{clip.pk}/adjudicate/", {"score": 2, "comment": "together", "next": back})
    assert done.status_code == 302 and done["Location"] == back
    assert ZoneReading.objects.get(source=ReadingSource.ADJUDICATION).score == 2
    evil = admin.post(f"/clips/{clip.pk}/adjudicate/", {"score": 2, "next": "https://evil.example/"})
    assert evil["Location"] == f"/exams/{ward.exam.pk}/"


def test_worklist_page_and_its_links(ward: Ward) -> None:
    from patients.readings.models import ReadingSource as Source
    from tests.factories import ExamFactory
    from tests.patients.dashboards import builders

    other = ExamFactory(patient=ward.exam.patient, acquired_at=ward.exam.acquired_at + dt.timedelta(days=1))
    builders.record_scores(other, {"R1": 1, "R2": 1}, mv=builders.model_version())
    ZoneReading.objects.filter(clip__exam=other, source=Source.AI, clip__zone="R2").update(confidence=0.2)
    url = f"/studies/{ward.study.pk}/worklist/"
    page = signed_in(ward.clinician).get(url)
    html = page.content.decode()
    assert page.status_code == 200 and html.index(f'data-exam="{other.pk}"') < html.index(f'data-exam="{ward.exam.pk}"')
    assert "AI unsure of 1 zone: R2" in html and "class=\"why-waiting\">waiting " in html
    assert f'href="/exams/{other.pk}/?review=1"' in html and "Review worklist (2)" in html
    researcher = signed_in(ward.researcher).get(url).content.decode()
    assert "?review=1" not in researcher and f'href="/exams/{other.pk}/"' in researcher
    assert not re.search(r'why-waiting">waiting \d', researcher) and not re.search(r"\b20\d\d-\d\d-\d\d", researcher)  # no date, no wait
    assert signed_in(ward.users["outsider"]).get(url).status_code == 404
    home = signed_in(ward.clinician).get("/").content.decode()
    assert f'href="{url}" class="worklist-link" data-count="2">2 exams waiting' in home
    study = signed_in(ward.clinician).get(f"/studies/{ward.study.pk}/").content.decode()
    assert "<strong>2 exams</strong> wait for review" in study
    read_all(ward, ward.clinician)
    reading_create(clip=other.clips.get(zone="R1"), by=ward.clinician, score=1)
    reading_create(clip=other.clips.get(zone="R2"), by=ward.clinician, score=1)
    for exam in (ward.exam, other):
        signed_in(ward.clinician).post(f"/exams/{exam.pk}/sign/")
    assert 'id="worklist-empty"' in signed_in(ward.clinician).get(url).content.decode()
    assert 'data-count="0">none waiting' in signed_in(ward.clinician).get("/").content.decode()


def _informative_exam(ward: Ward) -> Any:
    """A second exam of the ward's patient: one zone the AI cannot place (four equal probabilities)
    and unlike its training clips (domain distance 3.0). The ward's exam gets two unsure zones, so
    it leads the urgent order; its 12 zones all read 0.7 (entropy 0.678) with no domain check."""
    from tests.factories import ClipScoreFactory, ExamFactory
    from tests.patients.dashboards.builders import fake_clip

    other = ExamFactory(patient=ward.exam.patient, acquired_at=ward.exam.acquired_at + dt.timedelta(days=1))
    ClipScoreFactory(clip=fake_clip(other, "R1"), probs=[0.25] * 4,
                     extra={"domain": {"distance": 3.0, "threshold": 2.0, "in_domain": False}})
    ZoneReading.objects.filter(clip__exam=ward.exam, source=ReadingSource.AI, clip__zone__in=("R2", "R3")).update(
        confidence=0.2)
    return other


def test_worklist_order_switch(ward: Ward) -> None:
    """The switch renders on the page; label-more puts the informative exam first with its parts:
    13 unread zones, the ward's 12 tied on entropy (mean rank 6.5 of 13 = 0.5) with no novelty (0),
    the other exam's R1 top on both (1.0)."""
    other = _informative_exam(ward)
    url = f"/studies/{ward.study.pk}/worklist/"
    client = signed_in(ward.clinician)
    urgent = client.get(url).content.decode()
    assert f'<a href="{url}" data-order="urgent" class="current" aria-current="page">Most urgent first</a>' in urgent
    assert f'<a href="{url}?order=label-more" data-order="label-more">Most informative first (to improve the model)</a>' \
        in urgent
    assert urgent.index(f'data-exam="{ward.exam.pk}"') < urgent.index(f'data-exam="{other.pk}"')
    assert "AI unsure of 2 zones: R2, R3" in urgent and "why-informative" not in urgent
    page = client.get(url + "?order=label-more")
    html = page.content.decode()
    assert page.status_code == 200 and 'data-order="label-more" class="current" aria-current="page"' in html
    assert html.index(f'data-exam="{other.pk}"') < html.index(f'data-exam="{ward.exam.pk}"')
    assert "normalised entropy" in html and "the unread clips have no stored image features" in html
    assert "the AI&#x27;s out-of-domain distance" in html and "13 unread zones with an AI score" in html
    assert 'data-zone="R1" data-informativeness="1.0" data-uncertainty="1.0" data-novelty="3.0"' in html
    assert "R1 1.00 = mean of uncertainty rank 1.00 (entropy 1.00) and novelty rank 1.00" in html
    assert html.count('data-informativeness="0.25"') == 4  # the ward exam's row and its first three zones
    assert "and 9 more unread zones" in html and "AI unsure of" not in html
    fallback = client.get(url + "?order=nonsense").content.decode()
    assert 'data-order="urgent" class="current"' in fallback
    researcher = signed_in(ward.researcher).get(url + "?order=label-more").content.decode()
    assert "Most informative unread zone R1: informativeness 1.00." in researcher
    assert not re.search(r"\b20\d\d-\d\d-\d\d", researcher)


def test_agreement_page_pairs_and_disagreements(ward: Ward) -> None:
    from patients.research.agreement import agreement_report

    read_all(ward, ward.clinician)
    read_all(ward, ward.users["second"], {"R4": 0, "L5": 1})
    page = signed_in(ward.admin).get(f"/studies/{ward.study.pk}/agreement/")
    html = page.content.decode()
    report = agreement_report(study=ward.study, rater=None, model=None, user=ward.admin)
    for pair in report["pairs"]:
        assert f'data-a="{pair["a"]}" data-b="{pair["b"]}" data-n="{pair["n"]}"' in html
    pair = next(p for p in report["pairs"] if (p["a"], p["b"]) == ("rw-clinician", "rw-second"))
    assert (pair["n"], pair["accuracy"]) == (12, 10 / 12)
    assert f'data-a="rw-clinician" data-b="rw-second" data-n="12" data-qwk="{pair["qwk"]}"' in html
    table = html[html.index('id="disagreements-table"'):]
    assert table.count('class="adjudicate-form"') == 2 and 'name="next" value="/studies/' in table
    researcher = signed_in(ward.researcher).get(f"/studies/{ward.study.pk}/agreement/").content.decode()
    assert 'id="disagreements-table"' in researcher and "adjudicate-form" not in researcher
