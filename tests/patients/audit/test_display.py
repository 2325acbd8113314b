"""The audit trail in words (issue 16): the "Changes" column reads "PaCO2: 41 -> 45 mmHg", not a dict."""
from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client

from patients.audit.display import change_lines
from patients.records.services import blood_gas_create, blood_gas_update
from tests.patients.readings.ward import Ward

pytestmark = pytest.mark.django_db


def test_change_lines_name_the_field_its_values_and_unit() -> None:
    assert change_lines({"paco2_mmhg": {"old": 41.0, "new": 45.0}}) == ["PaCO2: 41 -> 45 mmHg"]
    assert change_lines({"name": {"old": None, "new": "Ann"}, "archived": {"old": False, "new": True}}) == [
        "Name: set to Ann", "Archived: no -> yes"]
    assert change_lines({"zone": {"old": "R1", "new": None}, "via": "api"}) == ["Zone: R1 removed", "Via: api"]
    assert change_lines({"patients": list(range(12))}) == ["Patients: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 … (12 in all)"]
    assert change_lines(None) == [] and change_lines({}) == []


def test_the_audit_page_shows_readable_changes(ward: Ward) -> None:
    at = dt.datetime(2026, 3, 3, 8, tzinfo=dt.UTC)
    gas = blood_gas_create(patient=ward.exam.patient, by=ward.clinician, sampled_at=at, paco2=41, pao2=80, fio2=0.4)
    blood_gas_update(gas=gas, by=ward.clinician, sampled_at=at, paco2=45, pao2=80, fio2=0.4)
    client = Client()
    client.force_login(ward.admin)
    page = client.get(f"/studies/{ward.study.pk}/audit/").content.decode()
    table = page[page.index('id="audit"'):]
    assert "<div>PaCO2: 41 -&gt; 45 mmHg</div>" in table
    assert "{&#x27;" not in table and "{'" not in table  # no raw Python dicts
