"""The change log's triggers (``patients.dashboards.pagechanges``), which the page cache's
fingerprint reads: installed on every watched table, one row per writing transaction and scope,
nothing from a rolled-back write, and a log that stays short without a fingerprint ever coming back.

These tests commit (``transaction=True``): the triggers log transactions."""
from __future__ import annotations

from typing import Any

import pytest
from django.db import connection, transaction

from patients.dashboards import pagecache, pagechanges
from patients.dashboards.models import PageChange
from patients.readings.models import ZoneReading
from patients.records.models import BloodGas, ClinicalInfo, Exam
from tests.patients.dashboards.conftest import Cohort

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the change log's triggers are PostgreSQL's")


def _fingerprint(cohort: Cohort, patient_id: int | None = None) -> str:
    return pagecache.fingerprint(patient_id=patient_id or cohort.patient.pk, study_id=cohort.study.pk,
                                 user_id=cohort.users["clinician"].pk)


def _rows(scope: str, key: int) -> int:
    return PageChange.objects.filter(scope=scope, key=key).count()


def test_every_watched_table_has_the_trigger() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid WHERE t.tgname = %s",
                       [pagechanges.TRIGGER])
        tables = {row[0] for row in cursor.fetchall()}
    expected = {w.model._meta.db_table for w in pagechanges.watched()} | {"patients_auditevent"}
    assert tables == expected
    assert len(expected) == 18


def test_one_row_per_transaction_and_scope(cohort: Cohort) -> None:
    before = _rows("p", cohort.patient.pk)
    with transaction.atomic():  # many rows of one patient, one transaction
        ZoneReading.objects.filter(clip__exam__patient=cohort.patient).update(comment="re-read")
        BloodGas.objects.filter(patient=cohort.patient).update(paco2_mmhg=47.0)
    assert _rows("p", cohort.patient.pk) == before + 1
    BloodGas.objects.filter(patient=cohort.patient).update(paco2_mmhg=48.0)  # another transaction
    assert _rows("p", cohort.patient.pk) == before + 2


def test_a_rolled_back_write_leaves_the_fingerprint(cohort: Cohort) -> None:
    before, rows = _fingerprint(cohort), PageChange.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        BloodGas.objects.filter(patient=cohort.patient).update(paco2_mmhg=70.0)
        raise RuntimeError("the save failed")
    assert (_fingerprint(cohort), PageChange.objects.count()) == (before, rows)


def test_an_exam_moved_to_another_patient_changes_both(cohort: Cohort) -> None:
    other = cohort.others[0]
    before = (_fingerprint(cohort), _fingerprint(cohort, other.pk))
    Exam.objects.filter(pk=cohort.exams[0].pk).update(patient=other)
    after = (_fingerprint(cohort), _fingerprint(cohort, other.pk))
    assert after[0] != before[0] and after[1] != before[1]


def test_the_log_stays_short_and_no_fingerprint_comes_back(cohort: Cohort) -> None:
    seen = [_fingerprint(cohort)]
    for i in range(pagechanges.KEEP + 12):
        BloodGas.objects.filter(patient=cohort.patient).update(paco2_mmhg=40.0 + i)
        seen.append(_fingerprint(cohort))
        assert _rows("p", cohort.patient.pk) <= pagechanges.KEEP + 1
    assert len(set(seen)) == len(seen)  # every write changed it, compactions included
    assert _rows("p", cohort.patient.pk) < pagechanges.KEEP  # compacted at least once


def test_a_compaction_spares_writes_it_cannot_see(cohort: Cohort) -> None:
    """A transaction still open compacts the log; a write committed meanwhile is not its to delete,
    and the compactor's commit changes the fingerprint again."""
    while _rows("p", cohort.patient.pk) < pagechanges.KEEP:  # the next write compacts
        BloodGas.objects.filter(patient=cohort.patient).update(paco2_mmhg=40.0 + _rows("p", cohort.patient.pk))
    compactor = connection.copy()  # a second session, its transaction left open
    compactor.connect()
    try:
        compactor.set_autocommit(False)
        with compactor.cursor() as cursor:
            cursor.execute(f"UPDATE {ClinicalInfo._meta.db_table} SET spo2 = 90 WHERE patient_id = %s",
                           [cohort.patient.pk])
        BloodGas.objects.filter(patient=cohort.patient).update(fio2=0.5)  # does not wait; does not compact
        assert _rows("p", cohort.patient.pk) == pagechanges.KEEP + 1
        before = _fingerprint(cohort)
        compactor.commit()
        assert _rows("p", cohort.patient.pk) == 2  # the compactor's row and the write made meanwhile
        assert _fingerprint(cohort) != before
    finally:
        compactor.close()


def test_the_triggers_can_be_removed_and_installed_again(cohort: Any) -> None:
    pagechanges.uninstall(connection)
    try:
        before = _fingerprint(cohort)
        BloodGas.objects.filter(patient=cohort.patient).update(paco2_mmhg=41.0)
        assert _fingerprint(cohort) == before  # nothing logs without them
    finally:
        pagechanges.install(connection)
    BloodGas.objects.filter(patient=cohort.patient).update(paco2_mmhg=42.0)
    assert _fingerprint(cohort) != before
