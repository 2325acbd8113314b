"""A patient's dashboard data, computed once and served again while none of the rows it was
computed from has changed.

Why: the timeline turns about 11,000 rows into Python objects per request (20 exams x 12 zones:
clips, readings, AI results, severities, gases); at 20 users reloading it, two cores spent their
time there. A ward reloads the same patients again and again, and the rows change far less often
than they are read.

How it stays right. An entry is served only when the patient's *fingerprint* is the one it was
computed at. Database triggers (:mod:`patients.dashboards.pagechanges`) on every table the pages
read add a row to a change log for each transaction that writes the patient's rows (its exams,
clips, readings, signatures, blind reads, clinical records, blood gases, scoring jobs, exam and
clip scores, severity predictions, audited changes of its exams and clips), its study's (the
study, its memberships, its model choice), the user's account, or any model version. The
fingerprint is one SQL statement over the log rows of those four scopes: their count and the
sum of a 64-bit hash of their ids. Any committed insert, update or delete, by any code path
(signals, ``update()``, ``bulk_create``, raw SQL, another process), changes it; no write path
has to remember to invalidate.

On a miss, the fingerprint and the data are read in one REPEATABLE READ snapshot: ``compute``
reads what it shows inside it (the user's account and roles are read again there too), so an
entry never pairs data with a fingerprint of another moment (a row inserted and deleted again
between the two would otherwise leave a stale entry under a valid fingerprint). Inside a
transaction (the caller's own writes may not be committed) the cache is bypassed. Entries are per
process (nothing to serialise; a deploy restarts the processes, so no entry outlives the code that
made it) and per user, time zone, language and script prefix: what a user may see is decided when
the entry is made, by the same code as without the cache. A served entry also stands for the
page's access check, which is not run again: the rows it reads are in the fingerprint.

PostgreSQL only (triggers, snapshots); other databases compute every request. ``LUSWEB_PAGE_CACHE_ENTRIES``
bounds the entries per process (least recently used go first; 0 turns it off). Callers must not
mutate what :func:`page_cached` returns: the same object is handed to later requests.
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
from django.db import connection, transaction
from django.urls import get_script_prefix
from django.utils import timezone, translation

from lusweb.sqlnames import column, pk, table
from patients.dashboards.models import PageChange
from patients.records.models import Patient
from patients.records.selectors import patient_for
from patients.studies import permissions

T = TypeVar("T")
F = TypeVar("F")


@functools.lru_cache(maxsize=1)
def fingerprint_sql() -> str:
    """The fingerprint statement (parameters ``patient``, ``study``, ``user``): the change log's
    rows of the four scopes, counted and hashed."""
    scope, key = column(PageChange, "scope"), column(PageChange, "key")
    return (f"SELECT count(*)::text || ':' || coalesce(sum(hashint8extended({pk(PageChange)}, 0)), 0)::text "
            f"FROM {table(PageChange)} WHERE ({scope} = 'p' AND {key} = %(patient)s) "
            f"OR ({scope} = 's' AND {key} = %(study)s) OR ({scope} = 'u' AND {key} = %(user)s) "
            f"OR ({scope} = 'g' AND {key} = 0)")


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
    statement; outside, the connection's prepared one, prepared on its first use: every answer
    served from the cache runs it."""
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
