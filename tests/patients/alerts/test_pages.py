"""The alerts on the pages: the study page's list with its Acknowledge forms, the header badge,
the study's alerts page with its rules form, the list fragment the live page fetches."""
from __future__ import annotations

import re

import pytest
from django.contrib.messages import get_messages

from patients.alerts.models import Alert, AlertRule
from patients.alerts.services import alerts_evaluate_gas
from tests.conftest import signed_in
from tests.factories import BloodGasFactory, UserFactory
from tests.patients.alerts.cohort import Cohort, cohort

pytestmark = pytest.mark.django_db


def low_gas(c: Cohort, pao2: float = 90.0) -> Alert:
    return alerts_evaluate_gas(gas_id=BloodGasFactory(patient=c.patient, pao2_mmhg=pao2, fio2=0.5).pk)[0]


def badge_count(html: str) -> int:
    found = re.search(r'id="alerts-badge"[^>]*data-count="(\d+)"', html)
    assert found, "no alerts badge in the header"
    return int(found.group(1))


def test_the_study_page_lists_open_alerts_with_an_acknowledge_form() -> None:
    c = cohort()
    alert = low_gas(c)
    html = signed_in(c.clinician).get(f"/studies/{c.study.pk}/").content.decode()
    assert 'id="study-alerts"' in html and f'data-alert="{alert.pk}"' in html
    assert "P/F 180 mmHg, below 300" in html and "P/F ratio below a threshold" in html and c.patient.code in html
    assert f'action="/alerts/{alert.pk}/acknowledge/"' in html and 'name="comment" required' in html
    assert badge_count(html) == 1
    assert 'src="/static/js/alerts.js"' in html and 'data-socket="0"' in html  # WSGI: it polls
    researcher = signed_in(c.researcher).get(f"/studies/{c.study.pk}/").content.decode()
    assert f'data-alert="{alert.pk}"' in researcher and "/acknowledge/" not in researcher
    assert re.search(r'class="alert-when nowrap">day \d', researcher)  # no calendar date for researchers


def test_the_acknowledge_form_needs_a_comment_then_acknowledges() -> None:
    c = cohort()
    alert = low_gas(c)
    client = signed_in(c.clinician)
    back = f"/studies/{c.study.pk}/"
    refused = client.post(f"/alerts/{alert.pk}/acknowledge/", {"comment": " ", "next": back})
    assert refused.status_code == 302 and refused["Location"] == back
    assert [str(m) for m in get_messages(refused.wsgi_request)] == ["acknowledging an alert needs a comment"]
    alert.refresh_from_db()
    assert alert.state == "open"
    done = client.post(f"/alerts/{alert.pk}/acknowledge/", {"comment": "repeat gas", "next": back})
    assert done["Location"] == back
    alert.refresh_from_db()
    assert (alert.state, alert.comment) == ("acknowledged", "repeat gas")
    html = client.get(back).content.decode()
    assert f'data-alert="{alert.pk}"' not in html and badge_count(html) == 0
    assert signed_in(UserFactory(username="stranger")).post(
        f"/alerts/{alert.pk}/acknowledge/", {"comment": "x"}).status_code == 404


def test_the_alerts_page_sets_the_rules_for_study_admins_only() -> None:
    c = cohort()
    url = f"/studies/{c.study.pk}/alerts/"
    page = signed_in(c.admin).get(url).content.decode()
    assert 'id="alert-rules-form"' in page and 'name="pf_ratio-threshold"' in page
    form = {"zone_worsened-enabled": "on", "zone_worsened-threshold": "3", "zone_worsened-email": "on",
            "global_score-enabled": "on", "global_score-threshold": "0.6",
            "pf_ratio-enabled": "on", "pf_ratio-threshold": "200", "pf_ratio-email": "on",
            "new_consolidation-email": "on"}
    assert signed_in(c.admin).post(url, form).status_code == 302
    rules = {r.kind: (r.enabled, r.threshold, r.email) for r in AlertRule.objects.filter(study=c.study)}
    assert rules == {"zone_worsened": (True, 3.0, True), "global_score": (True, 0.6, False),
                     "pf_ratio": (True, 200.0, True), "new_consolidation": (False, None, True)}
    clinician = signed_in(c.clinician)
    assert 'id="alert-rules-form"' not in clinician.get(url).content.decode()
    assert clinician.post(url, form).status_code == 403
    bad = signed_in(c.admin).post(url, {**form, "pf_ratio-threshold": "9000"})
    assert bad.status_code == 200 and AlertRule.objects.get(study=c.study, kind="pf_ratio").threshold == 200.0


def test_the_list_fragment_and_the_user_s_alerts_page() -> None:
    c = cohort()
    alert = low_gas(c)
    client = signed_in(c.clinician)
    fragment = client.get(f"/studies/{c.study.pk}/alerts/list/", {"back": f"/studies/{c.study.pk}/"}).content.decode()
    assert f'data-alert="{alert.pk}"' in fragment and f'name="next" value="/studies/{c.study.pk}/"' in fragment
    evil = client.get(f"/studies/{c.study.pk}/alerts/list/", {"back": "https://evil.test/"}).content.decode()
    assert "evil.test" not in evil
    mine = client.get("/alerts/").content.decode()
    assert f'data-alert="{alert.pk}"' in mine and c.study.name in mine
    assert signed_in(UserFactory(username="away")).get(f"/studies/{c.study.pk}/alerts/list/").status_code == 404
