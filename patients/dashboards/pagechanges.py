"""The database triggers that log which patient's, study's or user's pages a transaction changed
(:class:`~patients.dashboards.models.PageChange`), for the page cache's fingerprint
(:mod:`patients.dashboards.pagecache`). PostgreSQL only.

Why triggers: the fingerprint used to hash every row the pages read (about 1,000 rows in 18
sub-selects for a patient with 20 exams): 1.4 ms of PostgreSQL per page answered, a fifth of the
machine's CPU per answer under load. A trigger on each of those tables adds one row to the log
per writing transaction and scope instead, and the fingerprint reads at most a few dozen rows.
Like the row hashes, a trigger sees every committed insert, update and delete, by any code path
(``update()``, ``bulk_create``, raw SQL, another process); no write path has to remember to
invalidate. An update that moves a row to another patient logs both.

The log stays short: the first row a transaction adds to a scope that already holds
:data:`KEEP` rows deletes the older ones, unless another transaction is doing so for that scope
(an advisory lock it only tries). The new row has a new id, so the fingerprint after a
compaction is one it never had before. Readers never wait on writers, nor writers on each other:
each transaction inserts its own rows.
"""
from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper

from lusweb.sqlnames import column, pk, table
from patients.audit.models import AuditAction, AuditEvent
from patients.dashboards.models import PageChange
from patients.imaging.models import ZoneClip
from patients.readings.models import BlindRead, ExamSignature, ZoneReading
from patients.records.models import BloodGas, ClinicalInfo, Exam, Patient
from patients.studies.models import Membership, Study
from scoring.models import ClipScore, ExamScore, ModelVersion, ScoringJob, SeverityPrediction, StudyModel

#: Rows a scope keeps before a writer compacts it.
KEEP = 32
#: The audited changes of a patient's exams that the pages read (review states, ``record_changes``,
#: the signatures' marks). Views, exports and sign-ins are left out: reading pages writes them.
CHANGE_ACTIONS = (AuditAction.UPDATE, AuditAction.DELETE, AuditAction.SIGN)
NOTE = "lusweb_page_changed"
TRIGGER = "lusweb_page_changes"


@dataclass(frozen=True)
class Watched:
    """A table the pages read, the scope its rows belong to, and how a row finds its key: ``self``
    (its own id), a column (``patient``, ``study``), or through its ``exam`` or ``clip``."""

    model: type[models.Model]
    scope: str
    via: str


def watched() -> tuple[Watched, ...]:
    """Every table whose rows a patient's pages show, as the page cache must see its changes."""
    return (
        Watched(Patient, "p", "self"), Watched(Exam, "p", "patient"), Watched(ClinicalInfo, "p", "patient"),
        Watched(BloodGas, "p", "patient"), Watched(ZoneClip, "p", "exam"), Watched(ExamSignature, "p", "exam"),
        Watched(BlindRead, "p", "exam"), Watched(ScoringJob, "p", "exam"), Watched(ExamScore, "p", "exam"),
        Watched(SeverityPrediction, "p", "exam"), Watched(ZoneReading, "p", "clip"), Watched(ClipScore, "p", "clip"),
        Watched(Study, "s", "self"), Watched(Membership, "s", "study"), Watched(StudyModel, "s", "study"),
        Watched(get_user_model(), "u", "self"), Watched(ModelVersion, "g", "all"),
    )


def _exam_patient(exam_id: str) -> str:
    return f"(SELECT {column(Exam, 'patient')} FROM {table(Exam)} WHERE {pk(Exam)} = {exam_id})"


def _key(w: Watched, row: str) -> str:
    """The SQL expression of the key of ``row`` (NEW or OLD) of ``w``'s table."""
    if w.via == "self":
        return f"{row}.{pk(w.model)}"
    if w.via == "all":
        return "0"
    if w.via == "exam":
        return _exam_patient(f"{row}.{column(w.model, 'exam')}")
    if w.via == "clip":
        return (f"(SELECT e.{column(Exam, 'patient')} FROM {table(ZoneClip)} c JOIN {table(Exam)} e "
                f"ON e.{pk(Exam)} = c.{column(ZoneClip, 'exam')} WHERE c.{pk(ZoneClip)} = {row}.{column(w.model, 'clip')})")
    return f"{row}.{column(w.model, w.via)}"


def _function(w: Watched) -> str:
    name = f"lusweb_pc_{w.model._meta.db_table}"
    return f"""CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE old_key bigint; new_key bigint;
BEGIN
  IF TG_OP <> 'INSERT' THEN old_key := {_key(w, 'OLD')}; PERFORM {NOTE}('{w.scope}', old_key); END IF;
  IF TG_OP <> 'DELETE' THEN
    new_key := {_key(w, 'NEW')};
    IF new_key IS DISTINCT FROM old_key THEN PERFORM {NOTE}('{w.scope}', new_key); END IF;
  END IF;
  RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS {TRIGGER} ON {table(w.model)};
CREATE TRIGGER {TRIGGER} AFTER INSERT OR UPDATE OR DELETE ON {table(w.model)}
  FOR EACH ROW EXECUTE FUNCTION {name}();"""


def _audit_function() -> str:
    """Audit events are only ever inserted; an audited change of an exam, or of a clip (which
    names its exam), belongs to the exam's patient."""
    actions = ", ".join(f"'{a}'" for a in CHANGE_ACTIONS)
    kind, oid, changes = (column(AuditEvent, f) for f in ("object_type", "object_id", "changes"))
    return f"""CREATE OR REPLACE FUNCTION lusweb_pc_audit() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE exam text;
BEGIN
  IF NEW.{column(AuditEvent, 'action')} IN ({actions}) THEN
    exam := CASE NEW.{kind} WHEN 'exam' THEN NEW.{oid} WHEN 'zoneclip' THEN NEW.{changes} -> 'exam' ->> 'old' END;
    IF exam ~ '^[0-9]{{1,18}}$' THEN PERFORM {NOTE}('p', {_exam_patient('exam::bigint')}); END IF;
  END IF;
  RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS {TRIGGER} ON {table(AuditEvent)};
CREATE TRIGGER {TRIGGER} AFTER INSERT ON {table(AuditEvent)} FOR EACH ROW EXECUTE FUNCTION lusweb_pc_audit();"""


def _note_function() -> str:
    log = table(PageChange)
    scope, key, xact = (column(PageChange, f) for f in ("scope", "key", "xact"))
    return f"""CREATE OR REPLACE FUNCTION {NOTE}(s text, k bigint) RETURNS void LANGUAGE plpgsql AS $$
DECLARE added bigint;
BEGIN
  IF k IS NULL THEN RETURN; END IF;
  INSERT INTO {log} ({scope}, {key}, {xact}) VALUES (s, k, txid_current())
    ON CONFLICT DO NOTHING RETURNING {pk(PageChange)} INTO added;
  IF added IS NOT NULL AND (SELECT count(*) FROM {log} WHERE {scope} = s AND {key} = k) > {KEEP}
      AND pg_try_advisory_xact_lock(hashtext('{log}'), hashtext(s || k::text)) THEN
    DELETE FROM {log} WHERE {scope} = s AND {key} = k AND {pk(PageChange)} <> added;
  END IF;
END $$;"""


def install_sql() -> str:
    """Create (or replace) the functions and triggers."""
    return "\n".join([_note_function(), *(_function(w) for w in watched()), _audit_function()])


def uninstall_sql() -> str:
    """Drop the triggers and their functions."""
    return "\n".join([
        *(f"DROP TRIGGER IF EXISTS {TRIGGER} ON {table(w.model)}; "
          f"DROP FUNCTION IF EXISTS lusweb_pc_{w.model._meta.db_table}();" for w in watched()),
        f"DROP TRIGGER IF EXISTS {TRIGGER} ON {table(AuditEvent)}; DROP FUNCTION IF EXISTS lusweb_pc_audit();",
        f"DROP FUNCTION IF EXISTS {NOTE}(text, bigint);",
    ])


def install(connection: BaseDatabaseWrapper) -> None:
    """Install the triggers on ``connection``'s database (a migration's); nothing elsewhere than
    PostgreSQL, where the page cache is off."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(install_sql())


def uninstall(connection: BaseDatabaseWrapper) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(uninstall_sql())
