"""The dashboards' page cache (``patients.dashboards.pagecache``): an entry is served only while none
of the rows it was computed from changed, whatever path wrote them, and only to its own user.

These tests commit (``transaction=True``): inside a test's transaction the cache is bypassed."""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, transaction
from django.http import Http404
from django.test import override_settings
from django.urls import reverse

from patients.audit.models import AuditAction
from patients.audit.services import audit_record
from patients.dashboards import pagecache
from patients.readings.models import ZoneReading
from patients.readings.services import blind_read_start, reading_create
from patients.records.models import BloodGas, Exam
from patients.studies import permissions
from patients.studies.models import Membership, Role
from patients.studies.services import membership_set
from scoring.models import ClipScore, ExamScore, ModelVersion, ScoringJob, StudyModel
from tests.conftest import signed_in
from tests.factories import BloodGasFactory, ExamFactory, PatientFactory, UserFactory
from tests.patients.dashboards import builders
from tests.patients.dashboards.conftest import Cohort

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _postgresql_and_empty_cache() -> Any:
    if connection.vendor != "postgresql":
        pytest.skip("the page cache needs PostgreSQL (xmin)")
    pagecache.STORE.clear()
    yield
    pagecache.STORE.clear()


def _fingerprint(cohort: Cohort, user: Any = None) -> str:
    user = user or cohort.users["clinician"]
    return pagecache.fingerprint(patient_id=cohort.patient.pk, study_id=cohort.study.pk, user_id=user.pk)


def _first_clip(cohort: Cohort) -> Any:
    return cohort.exams[0].clips.order_by("pk").first()


def _copy(row: Any, **fields: Any) -> Any:
    row.pk = None
    for name, value in fields.items():
        setattr(row, name, value)
    return row


def _counting(value: Any) -> tuple[Callable[[], Any], list[int]]:
    calls: list[int] = []

    def compute() -> Any:
        calls.append(1)
        return value

    return compute, calls


def _cached(cohort: Cohort, compute: Callable[[], Any], user: Any = None, kind: str = "test",
            checks: list[int] | None = None) -> Any:
    """``compute()`` through the cache, behind the patient pages' access check (counted in ``checks``)."""
    user = user or cohort.users["clinician"]

    def locate() -> pagecache.Located[Any]:
        (checks if checks is not None else []).append(1)
        return pagecache.located_patient(user=user, pk=cohort.patient.pk)

    return pagecache.page_cached(kind=kind, part=cohort.patient.pk, user=user, locate=locate,
                                 compute=lambda _found: compute())[1]


# Every way a row the pages read can change, including the paths that send no signal.
WRITES: dict[str, Callable[[Cohort], None]] = {
    "a clinician's reading (service)": lambda c: reading_create(clip=_first_clip(c), by=c.users["clinician"], score=3),
    "readings updated in bulk (no signal)": lambda c: ZoneReading.objects.filter(
        clip__exam__patient=c.patient).update(score=0),
    "a clip score created in bulk": lambda c: ClipScore.objects.bulk_create([_copy(
        ClipScore.objects.filter(clip=_first_clip(c)).first(),
        job=ScoringJob.objects.create(exam=c.exams[0], model_version=c.extra["mv"], status="succeeded"))]),
    "a blood gas changed by raw SQL": lambda c: connection.cursor().execute(
        f"UPDATE {BloodGas._meta.db_table} SET paco2_mmhg = 61 WHERE patient_id = %s", [c.patient.pk]),
    "an exam's date": lambda c: Exam.objects.filter(pk=c.exams[2].pk).update(
        acquired_at=c.exams[2].acquired_at + dt.timedelta(hours=1)),
    "a new exam": lambda c: ExamFactory(patient=c.patient),
    "a clip deleted": lambda c: _first_clip(c).delete(),
    "an exam score deleted": lambda c: ExamScore.objects.filter(exam=c.exams[0]).delete(),
    "the patient's admission date": lambda c: type(c.patient).objects.filter(pk=c.patient.pk).update(
        admission_date=dt.date(2026, 2, 27)),
    "the study's protocol": lambda c: type(c.study).objects.filter(pk=c.study.pk).update(protocol="blue-6"),
    "another model made active": lambda c: ModelVersion.objects.create(version="other", weights="default",
                                                                       is_active=False),
    "the study's model chosen": lambda c: StudyModel.objects.create(study=c.study,
                                                                    model_version=c.extra["mv"]),
    "a member's role": lambda c: Membership.objects.filter(user=c.users["clinician"]).update(role=Role.RESEARCHER),
    "the user's account": lambda c: type(c.users["clinician"]).objects.filter(
        pk=c.users["clinician"].pk).update(is_superuser=True),
    "a blind read opened": lambda c: blind_read_start(exam=c.exams[1], by=c.users["clinician"]),
    "an audited change of the study": lambda c: audit_record(actor=c.users["study_admin"], action=AuditAction.UPDATE,
                                                             study=c.study, obj=c.exams[0], changes={}),
}


@pytest.mark.parametrize("write", list(WRITES), ids=list(WRITES))
def test_every_write_changes_the_fingerprint(cohort: Cohort, write: str) -> None:
    before = _fingerprint(cohort)
    assert _fingerprint(cohort) == before  # stable while nothing changes
    WRITES[write](cohort)
    assert _fingerprint(cohort) != before


def test_other_patients_and_unread_records_leave_it(cohort: Cohort) -> None:
    before = _fingerprint(cohort)
    other = cohort.others[0]
    reading_create(clip=other.exams.first().clips.order_by("pk").first(), by=cohort.users["clinician"], score=1)
    BloodGasFactory(patient=other)
    PatientFactory(study=cohort.study)
    # Reading pages writes a view event: not a change of what the pages show.
    audit_record(actor=cohort.users["clinician"], action=AuditAction.VIEW_IDENTIFYING, study=cohort.study,
                 obj=cohort.patient, changes={})
    assert _fingerprint(cohort) == before


def test_served_again_until_a_write(cohort: Cohort) -> None:
    compute, calls = _counting({"value": 1})
    first = _cached(cohort, compute)
    assert _cached(cohort, compute) is first
    assert len(calls) == 1
    reading_create(clip=_first_clip(cohort), by=cohort.users["clinician"], score=2)
    _cached(cohort, compute)
    assert len(calls) == 2


def test_a_served_entry_stands_for_the_access_check_until_access_changes(cohort: Cohort) -> None:
    compute, calls = _counting("x")
    checks: list[int] = []
    user = cohort.users["clinician"]
    _cached(cohort, compute, checks=checks)
    _cached(cohort, compute, checks=checks)
    assert (len(calls), len(checks)) == (1, 1)
    assert permissions.role_in_study(user, cohort.study.pk) == Role.CLINICIAN  # remembered by the hit
    Membership.objects.filter(user=user, study=cohort.study).delete()
    with pytest.raises(Http404):
        _cached(cohort, compute, checks=checks)
    assert (len(calls), len(checks)) == (1, 2)
    with pytest.raises(Http404):  # nothing was stored for the refused request
        _cached(cohort, compute, checks=checks)
    assert len(checks) == 3


def test_an_entry_is_its_users_alone(cohort: Cohort) -> None:
    compute, calls = _counting("clinician's")
    _cached(cohort, compute)
    _cached(cohort, compute, user=cohort.users["researcher"])
    _cached(cohort, compute, kind="other page")
    assert len(calls) == 3


def test_computed_in_one_repeatable_read_snapshot(cohort: Cohort) -> None:
    seen: list[str] = []

    def compute() -> str:
        with connection.cursor() as cursor:
            cursor.execute("SHOW transaction_isolation")
            seen.append(cursor.fetchone()[0])
        return "x"

    _cached(cohort, compute)
    assert seen == ["repeatable read"]


def test_bypassed_inside_a_transaction(cohort: Cohort) -> None:
    compute, calls = _counting("x")
    with transaction.atomic():
        _cached(cohort, compute)
        _cached(cohort, compute)
    assert len(calls) == 2
    assert len(pagecache.STORE) == 0


@override_settings(PAGE_CACHE_ENTRIES=2)
def test_bounded_least_recently_used_first(cohort: Cohort) -> None:
    compute, calls = _counting("x")
    for kind in ("a", "b", "a", "c", "a", "b"):
        _cached(cohort, compute, kind=kind)
    # a, b computed; a served; c evicts b; a served; b computed again (evicting c)
    assert len(calls) == 4
    assert len(pagecache.STORE) == 2


@override_settings(PAGE_CACHE_ENTRIES=0)
def test_off_with_no_entries(cohort: Cohort) -> None:
    compute, calls = _counting("x")
    _cached(cohort, compute)
    _cached(cohort, compute)
    assert len(calls) == 2


def test_prepared_again_on_a_connection_that_lost_it(cohort: Cohort) -> None:
    before = _fingerprint(cohort)
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")
    assert _fingerprint(cohort) == before


def _timeline_data(response: Any) -> dict[str, Any]:
    assert response.status_code == 200
    text = response.content.decode()
    start = text.index('<script id="timeline-data" type="application/json">') + len(
        '<script id="timeline-data" type="application/json">')
    return json.loads(text[start:text.index("</script>", start)])


def test_timeline_page_shows_a_new_reading_at_once(cohort: Cohort) -> None:
    client = signed_in(cohort.users["clinician"])
    url = reverse("dashboard-patient-timeline", args=[cohort.patient.pk])
    first = _timeline_data(client.get(url))
    assert len(pagecache.STORE) == 1
    assert _timeline_data(client.get(url)) == first
    zone = _first_clip(cohort).zone
    assert first["exams"][0]["zone_details"][zone]["source"] == "ai"
    reading_create(clip=_first_clip(cohort), by=cohort.users["clinician"], score=3)
    after = _timeline_data(client.get(url))["exams"][0]["zone_details"][zone]
    assert (after["source"], after["score"], after["reader"]) == ("clinician", 3, "clinician-user")


def test_timeline_page_follows_a_role_change(cohort: Cohort) -> None:
    user = cohort.users["clinician"]
    client = signed_in(user)
    url = reverse("dashboard-patient-timeline", args=[cohort.patient.pk])
    assert "Alice Secret" in client.get(url).content.decode()
    membership_set(study=cohort.study, username=user.username, role=Role.RESEARCHER, by=cohort.users["study_admin"])
    page = client.get(url).content.decode()
    assert "Alice Secret" not in page and "no calendar dates for researchers" in page


def test_exam_api_shows_a_rescoring_at_once(cohort: Cohort, api_for: Any) -> None:
    api = api_for(cohort.users["clinician"])
    exam = cohort.exams[1]
    url = f"/api/v1/exams/{exam.pk}/"
    before = api.get(url).json()
    assert api.get(url).json() == before
    newer = builders.model_version("test-model-2", active=False)
    builders.record_scores(exam, dict.fromkeys(cohort.extra["codes"], 0), mv=newer)
    ExamScore.objects.filter(exam=exam, model_version=cohort.extra["mv"]).delete()
    after = api.get(url).json()
    assert after["scores"] != before["scores"]
    assert after["scores"]["model_version"] == "test-model-2"


def test_exam_api_and_timeline_refuse_at_once_when_membership_ends(cohort: Cohort, api_for: Any) -> None:
    user = cohort.users["clinician"]
    api, client = api_for(user), signed_in(user)
    urls = [f"/api/v1/exams/{cohort.exams[1].pk}/", f"/api/v1/patients/{cohort.patient.pk}/timeline/"]
    page = reverse("dashboard-patient-timeline", args=[cohort.patient.pk])
    assert [api.get(u).status_code for u in urls] + [client.get(page).status_code] == [200, 200, 200]
    assert [api.get(u).status_code for u in urls] + [client.get(page).status_code] == [200, 200, 200]  # served
    Membership.objects.filter(user=user, study=cohort.study).delete()
    assert [api.get(u).status_code for u in urls] + [client.get(page).status_code] == [404, 404, 404]


def test_exam_api_entry_is_not_anothers(cohort: Cohort, api_for: Any) -> None:
    exam = cohort.exams[1]
    url = f"/api/v1/exams/{exam.pk}/"
    assert "notes" in api_for(cohort.users["clinician"]).get(url).json()
    researcher_view = api_for(cohort.users["researcher"]).get(url).json()
    assert "notes" not in researcher_view and "acquired_at" not in researcher_view
    outsider = UserFactory(username="stranger")
    assert api_for(outsider).get(url).status_code == 404
