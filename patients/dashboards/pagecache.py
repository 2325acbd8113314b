"""A patient's dashboard data, computed once and served again while none of the rows it was
computed from has changed.

Why: the timeline turns about 11,000 rows into Python objects per request (20 exams x 12 zones:
clips, readings, AI results, severities, gases); at 20 users reloading it, two cores spent their
time there. A ward reloads the same patients again and again, and the rows change far less often
than they are read.

How it stays right. An entry is served only when the patient's *fingerprint* is the one it was
computed at. The fingerprint is one SQL statement over every row the pages read for the patient:
the patient, its study, exams, clips, readings, signatures, blind reads, clinical records, blood
gases, scoring jobs, exam and clip scores, severity predictions, the study's model choice, every
model version, the study's memberships, the user's account, and the audited changes of its exams
and clips (review states read them). For each table it sums a 64-bit hash of each row's
``(id, xmin)``, with the row count. PostgreSQL gives every row version the id of the transaction
that wrote it (``xmin``), so any committed insert, update or delete, by any code path (signals,
``update()``, ``bulk_create``, raw SQL, another process), changes the fingerprint; no write path
has to remember to invalidate. Audit events are never updated, so their count and highest id
stand for them.

On a miss, the fingerprint and the data are read in one REPEATABLE READ snapshot: ``compute``
reads what it shows inside it (the user's account and roles are read again there too), so an
entry never pairs data with a fingerprint of another moment (a row inserted and deleted again
between the two would otherwise leave a stale entry under a valid fingerprint). Inside a
transaction (the caller's own writes may not be committed) the cache is bypassed. Entries are per
process (nothing to serialise; a deploy restarts the processes, so no entry outlives the code that
made it) and per user, time zone, language and script prefix: what a user may see is decided when
the entry is made, by the same code as without the cache. A served entry also stands for the
page's access check, which is not run again: the rows it reads are in the fingerprint.

PostgreSQL only (``xmin``); other databases compute every request. ``LUSWEB_PAGE_CACHE_ENTRIES``
bounds the entries per process (least recently used go first; 0 turns it off). Callers must not
mutate what :func:`patient_cached` returns: the same object is handed to later requests.
"""
from __future__ import annotations

import functools
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import psycopg
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, models, transaction
from django.urls import get_script_prefix
from django.utils import timezone, translation

from lusweb.sqlnames import column, pk, table
from patients.audit.models import AuditAction, AuditEvent
from patients.imaging.models import ZoneClip
from patients.readings.models import BlindRead, ExamSignature, ZoneReading
from patients.records.models import BloodGas, ClinicalInfo, Exam, Patient
from patients.records.selectors import patient_for
from patients.studies import permissions
from patients.studies.models import Membership, Study
from scoring.models import ClipScore, ExamScore, ModelVersion, ScoringJob, SeverityPrediction, StudyModel

T = TypeVar("T")
F = TypeVar("F")

#: The audited changes of the patient's exams that review states read (``record_changes``, the
#: signatures' marks): its exams' updates and signatures, and its clips' deletions. Views,
#: exports and sign-ins are left out: reading pages writes them.
CHANGE_ACTIONS = (AuditAction.UPDATE, AuditAction.DELETE, AuditAction.SIGN)


def _rows(model: type[models.Model], where: str) -> str:
    """The row count and the sum of a 64-bit hash of each ``(pk, xmin)`` of ``model``'s rows
    matching ``where`` (alias ``t``)."""
    key = pk(model)
    return (f"(SELECT count(*)::text || ':' || coalesce(sum(hashtextextended(t.{key}::text || ':' || t.xmin::text, 0)), 0)::text "
            f"FROM {table(model)} t WHERE {where})")


@functools.lru_cache(maxsize=1)
def fingerprint_sql() -> str:
    """The fingerprint statement (parameters ``patient``, ``study``, ``user``)."""
    exams = "SELECT id FROM e"
    clips = "SELECT id FROM c"
    of_exams = {model: f"t.{column(model, 'exam')} IN ({exams})"
                for model in (ExamSignature, BlindRead, ScoringJob, ExamScore, SeverityPrediction)}
    parts = [
        _rows(Patient, f"t.{pk(Patient)} = %(patient)s"),
        _rows(Study, f"t.{pk(Study)} = %(study)s"),
        _rows(Exam, f"t.{column(Exam, 'patient')} = %(patient)s"),
        _rows(ZoneClip, f"t.{column(ZoneClip, 'exam')} IN ({exams})"),
        _rows(ZoneReading, f"t.{column(ZoneReading, 'clip')} IN ({clips})"),
        _rows(ClipScore, f"t.{column(ClipScore, 'clip')} IN ({clips})"),
        *(_rows(model, where) for model, where in of_exams.items()),
        _rows(ClinicalInfo, f"t.{column(ClinicalInfo, 'patient')} = %(patient)s"),
        _rows(BloodGas, f"t.{column(BloodGas, 'patient')} = %(patient)s"),
        _rows(StudyModel, f"t.{column(StudyModel, 'study')} = %(study)s"),
        _rows(ModelVersion, "TRUE"),
        _rows(Membership, f"t.{column(Membership, 'study')} = %(study)s"),
        _rows(get_user_model(), f"t.{pk(get_user_model())} = %(user)s"),
        # Never updated (the trail is append-only): how many and the newest stand for them.
        (f"(SELECT count(*)::text || ':' || coalesce(max(t.{pk(AuditEvent)}), 0)::text FROM {table(AuditEvent)} t "
         f"WHERE t.{column(AuditEvent, 'study')} = %(study)s "
         f"AND t.{column(AuditEvent, 'action')} IN ({', '.join(repr(str(a)) for a in CHANGE_ACTIONS)}) "
         f"AND ((t.{column(AuditEvent, 'object_type')} = 'exam' "
         f"AND t.{column(AuditEvent, 'object_id')} IN (SELECT id::text FROM e)) "
         f"OR (t.{column(AuditEvent, 'object_type')} = 'zoneclip' "
         f"AND t.{column(AuditEvent, 'changes')} -> 'exam' ->> 'old' IN (SELECT id::text FROM e))))"),
    ]
    # The patient's exams (e) and clips (c), once for every sub-select that needs them.
    return (f"WITH e AS MATERIALIZED (SELECT {pk(Exam)} AS id FROM {table(Exam)} "
            f"WHERE {column(Exam, 'patient')} = %(patient)s), "
            f"c AS MATERIALIZED (SELECT {pk(ZoneClip)} AS id FROM {table(ZoneClip)} "
            f"WHERE {column(ZoneClip, 'exam')} IN (SELECT id FROM e)) "
            "SELECT concat_ws('|', " + ",\n ".join(parts) + ")")


#: The server-side prepared statement of :func:`fingerprint_sql` on each pooled connection.
STATEMENT = "lusweb_page_fingerprint"


@functools.lru_cache(maxsize=1)
def _prepare_sql() -> str:
    positional = (fingerprint_sql().replace("%(patient)s", "$1").replace("%(study)s", "$2")
                  .replace("%(user)s", "$3"))
    return f"PREPARE {STATEMENT}(bigint, bigint, bigint) AS {positional}"


def _digest(row: Any) -> str:
    return hashlib.sha256(str(row[0] if row else "").encode()).hexdigest()


def fingerprint(*, patient_id: int, study_id: int, user_id: int | None) -> str:
    """The patient's fingerprint now (one statement; PostgreSQL). Inside a transaction the plain
    statement; outside, the connection's prepared one, prepared on its first use: planning the
    18 sub-selects and binding the parameters took as long as running them."""
    params = {"patient": patient_id, "study": study_id, "user": user_id or 0}
    if connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute(fingerprint_sql(), params)
            return _digest(cursor.fetchone())
    connection.ensure_connection()
    # psycopg's own cursor, in autocommit: a failed EXECUTE leaves no transaction to roll back.
    with connection.connection.cursor() as raw:
        execute = f"EXECUTE {STATEMENT}({int(patient_id)}, {int(study_id)}, {int(user_id or 0)})"
        try:
            raw.execute(execute)
        except psycopg.errors.InvalidSqlStatementName:  # this connection has not prepared it yet
            try:
                raw.execute(_prepare_sql())
            except psycopg.errors.DuplicatePreparedStatement:
                pass  # prepared meanwhile on the same server session (a connection pooler's)
            raw.execute(execute)
        return _digest(raw.fetchone())


@dataclass(frozen=True)
class Located(Generic[F]):
    """What a page's access check found for the user (``found``: a patient and the user's role, an
    exam), and the patient and study whose rows the page shows."""

    found: F
    patient_id: int
    study_id: int


@dataclass(frozen=True)
class _Entry:
    fingerprint: str
    located: Located[Any]
    role: str | None
    value: Any


class _Store:
    """A bounded, thread-safe mapping of key -> entry, least recently used out first."""

    def __init__(self) -> None:
        self._entries: OrderedDict[tuple[Any, ...], _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...]) -> _Entry | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def put(self, key: tuple[Any, ...], entry: _Entry, limit: int) -> None:
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > limit:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


STORE = _Store()


def enabled() -> bool:
    """Whether answers may come from the cache here and now: PostgreSQL, a positive
    ``PAGE_CACHE_ENTRIES``, and no transaction open on the connection."""
    return (settings.PAGE_CACHE_ENTRIES > 0 and connection.vendor == "postgresql"
            and not connection.in_atomic_block)


def located_patient(*, user: Any, pk: int) -> Located[tuple[Patient, str]]:
    """Patient ``pk`` with its study and the user's role (404 for outsiders): the access check of
    the patient's pages."""
    patient, role = patient_for(user=user, pk=pk)
    return Located((patient, role), patient.pk, patient.study_id)


def page_cached(*, kind: str, part: Hashable, user: Any, locate: Callable[[], Located[F]],
                compute: Callable[[F], T]) -> tuple[F, T]:
    """``locate()`` (the page's access check for ``user``: it raises for an outsider) and
    ``compute(found)``; or both as they were for the same ``kind``, ``part`` (the page's object,
    e.g. an exam id) and user, while none of the located patient's rows has changed since (see the
    module's docstring). Do not mutate what it returns.

    A served entry skips the access check too. That is sound because the fingerprint covers every
    row the check reads: the patient (its study), the study, its memberships, the user's account,
    and the patient's exams. On a miss, ``locate`` and ``compute`` run inside the snapshot of the
    fingerprint they are stored with, so ``compute`` must read what it shows itself (it gets what
    ``locate`` read there). The user's account and roles are read again in that snapshot (``user``
    is refreshed in place); a served entry remembers the user's role in the study on ``user``, as
    the access check would have."""
    if not enabled():
        located = locate()
        return located.found, compute(located.found)
    user_id = getattr(user, "pk", None)
    key = (kind, part, user_id, timezone.get_current_timezone_name(), translation.get_language(),
           get_script_prefix())
    entry = STORE.get(key)
    if entry is not None and entry.fingerprint == fingerprint(
            patient_id=entry.located.patient_id, study_id=entry.located.study_id, user_id=user_id):
        permissions.role_remember(user, entry.located.study_id, entry.role)
        return entry.located.found, entry.value
    with transaction.atomic():
        # One snapshot for the fingerprint and the data; must be the transaction's first statement.
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        if user_id is not None:
            user.refresh_from_db()
            permissions.roles_forget(user)
        located = locate()
        now = fingerprint(patient_id=located.patient_id, study_id=located.study_id, user_id=user_id)
        value = compute(located.found)
        role = permissions.role_in_study(user, located.study_id)
    STORE.put(key, _Entry(now, located, role, value), settings.PAGE_CACHE_ENTRIES)
    return located.found, value
