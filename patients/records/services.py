"""Clinical record writes: patients, exams, clinical information and blood gases.

Every function takes keyword arguments only, checks the user may write to the study, validates
before touching the database and audits what it changes.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction

from lusweb.errors import ServiceError, check_settable
from patients.audit.models import AuditAction
from patients.audit.services import audit_record, create_audited, diff, snapshot, update_audited
from patients.records.models import BloodGas, ClinicalInfo, Exam, GasUnit, Patient
from patients.records.signals import blood_gas_saved
from patients.records.units import KPA_TO_MMHG
from patients.studies import permissions
from patients.studies.models import Study
from patients.studies.protocols import validate_protocol

PATIENT_FIELDS = ("code", "sex", "birth_year", "admission_date", "name", "hospital_number")
EXAM_FIELDS = ("acquired_at", "protocol", "device", "probe", "operator", "notes")
GAS_RANGES_MMHG = {"paco2": (5.0, 200.0), "pao2": (10.0, 800.0)}
GAS_AUDIT_FIELDS = ("sampled_at", "paco2_mmhg", "pao2_mmhg", "ph", "hco3", "lactate", "sao2", "fio2", "unit_entered")


# --- patients and exams --------------------------------------------------------------------


def _clean_patient_code(study: Study, code: str, *, exclude: Patient | None = None) -> str:
    """The stripped code; refuses an empty one or one already used by another patient of the study."""
    code = str(code).strip()
    if not code:
        raise ServiceError("a patient needs a pseudonym code", code="bad_code")
    clash = Patient.objects.filter(study=study, code=code)
    if exclude is not None:
        clash = clash.exclude(pk=exclude.pk)
    if clash.exists():
        raise ServiceError(f"patient code {code!r} is already used in study {study.name!r}", code="duplicate")
    return code


def _check_birth_year(birth_year: int | None) -> None:
    this_year = dt.date.today().year
    if birth_year is not None and not (1900 <= birth_year <= this_year):
        raise ServiceError(f"birth year {birth_year} is outside 1900-{this_year}", code="bad_birth_year")


def patient_create(
    *,
    study: Study,
    code: str,
    by: Any,
    sex: str = "U",
    birth_year: int | None = None,
    admission_date: dt.date | None = None,
    name: str = "",
    hospital_number: str = "",
) -> Patient:
    permissions.require_write(by, study)
    code = _clean_patient_code(study, code)
    _check_birth_year(birth_year)
    return create_audited(Patient, audited_in=study, by=by, tracked=PATIENT_FIELDS, study=study, code=code, sex=sex,
                          birth_year=birth_year, admission_date=admission_date, name=name,
                          hospital_number=hospital_number)


def patient_update(*, patient: Patient, by: Any, **fields: Any) -> Patient:
    """Change a patient's fields; the audit keeps the old and new values."""
    permissions.require_write(by, patient.study)
    check_settable(fields, PATIENT_FIELDS)
    if "code" in fields:
        fields["code"] = _clean_patient_code(patient.study, fields["code"], exclude=patient)
    _check_birth_year(fields.get("birth_year"))
    update_audited(patient, fields=fields, tracked=PATIENT_FIELDS, study=patient.study, by=by)
    return patient


def patient_delete(*, patient: Patient, by: Any) -> None:
    """Delete a patient with their exams, clips, readings, records and gases; the audit keeps the
    patient's fields and how many exams went with them."""
    permissions.require_write(by, patient.study)
    with transaction.atomic():
        audit_record(actor=by, action=AuditAction.DELETE, study=patient.study, obj=patient,
                     changes={**diff(snapshot(patient, PATIENT_FIELDS), {}),
                              "exams": {"old": patient.exams.count(), "new": 0}})
        patient.delete()


def exam_create(
    *,
    patient: Patient,
    acquired_at: dt.datetime,
    by: Any,
    protocol: str | None = None,
    device: str = "",
    probe: str = "",
    operator: str = "",
    notes: str = "",
    other_protocol: bool = False,
) -> Exam:
    """A new exam of ``patient``; its protocol is the study's default unless ``protocol`` names
    another, which needs ``other_protocol`` (an explicit choice: a BLUE-6 exam in a 12-zone study
    is compared with the others by normalised scores and shared sites only)."""
    permissions.require_write(by, patient.study)
    protocol = protocol or patient.study.protocol
    validate_protocol(protocol)
    check_protocol_choice(patient.study.protocol, protocol, other_protocol)
    return create_audited(Exam, audited_in=patient.study, by=by, tracked=EXAM_FIELDS, patient=patient,
                          acquired_at=acquired_at, protocol=protocol, device=device, probe=probe, operator=operator,
                          notes=notes, created_by=by)


def check_protocol_choice(default: str, protocol: str, other_protocol: bool) -> None:
    """Refuse (``protocol_not_default``) an exam protocol other than the study's default unless
    the choice was explicit."""
    if protocol != default and not other_protocol:
        raise ServiceError(
            f"protocol {protocol!r} is not the study's default ({default!r}): choose it explicitly "
            f"(other_protocol) to record an exam of another protocol", code="protocol_not_default")


def exam_update(*, exam: Exam, by: Any, other_protocol: bool = False, **fields: Any) -> Exam:
    """Change an exam's fields (not its patient); audited with old and new values. Changing the
    protocol to one other than the study's default needs ``other_protocol`` as at creation."""
    permissions.require_write(by, exam.study)
    check_settable(fields, EXAM_FIELDS)
    if "protocol" in fields:
        validate_protocol(fields["protocol"])
        if fields["protocol"] != exam.protocol:
            check_protocol_choice(exam.study.protocol, fields["protocol"], other_protocol)
    update_audited(exam, fields=fields, tracked=EXAM_FIELDS, study=exam.study, by=by)
    return exam


def exam_delete(*, exam: Exam, by: Any) -> None:
    permissions.require_write(by, exam.study)
    with transaction.atomic():
        audit_record(actor=by, action=AuditAction.DELETE, study=exam.study, obj=exam,
                     changes={**diff(snapshot(exam, EXAM_FIELDS), {}), "clips": {"old": exam.clips.count(), "new": 0}})
        exam.delete()


# --- clinical information and blood gases ----------------------------------------------------


def clinical_info_create(*, patient: Patient, by: Any, recorded_at: dt.datetime, **fields: Any) -> ClinicalInfo:
    permissions.require_write(by, patient.study)
    allowed = {f.name for f in ClinicalInfo._meta.get_fields()} - {"id", "patient", "recorded_at", "created_at"}
    unknown = set(fields) - allowed
    if unknown:
        raise ServiceError(f"unknown clinical fields: {', '.join(sorted(unknown))}", code="bad_field")
    _check_range(fields.get("spo2"), 0, 100, f"SpO2 {fields.get('spo2')} is outside 0-100 %", "bad_spo2")
    _check_range(fields.get("respiratory_rate"), 0, 120,
                 f"respiratory rate {fields.get('respiratory_rate')} is outside 0-120 /min", "bad_respiratory_rate")
    with transaction.atomic():
        record = ClinicalInfo.objects.create(patient=patient, recorded_at=recorded_at, **fields)
        audit_record(actor=by, action=AuditAction.CREATE, study=patient.study, obj=record,
                     changes=diff({}, {"recorded_at": recorded_at, **fields}))
    return record


CLINICAL_FIELDS = tuple(f.name for f in ClinicalInfo._meta.get_fields()
                        if f.name not in ("id", "patient", "created_at"))


def clinical_info_update(*, record: ClinicalInfo, by: Any, **fields: Any) -> ClinicalInfo:
    """Change a clinical record's fields; audited with old and new values."""
    permissions.require_write(by, record.patient.study)
    check_settable(fields, CLINICAL_FIELDS)
    _check_range(fields.get("spo2"), 0, 100, f"SpO2 {fields.get('spo2')} is outside 0-100 %", "bad_spo2")
    _check_range(fields.get("respiratory_rate"), 0, 120,
                 f"respiratory rate {fields.get('respiratory_rate')} is outside 0-120 /min", "bad_respiratory_rate")
    update_audited(record, fields=fields, tracked=CLINICAL_FIELDS, study=record.patient.study, by=by)
    return record


def record_delete(*, record: ClinicalInfo | BloodGas, by: Any) -> None:
    """Delete a clinical record or a blood gas; the audit keeps its values."""
    study = record.patient.study
    permissions.require_write(by, study)
    tracked = GAS_AUDIT_FIELDS if isinstance(record, BloodGas) else CLINICAL_FIELDS
    with transaction.atomic():
        audit_record(actor=by, action=AuditAction.DELETE, study=study, obj=record,
                     changes=diff(snapshot(record, tracked), {}))
        record.delete()


def _check_range(value: float | None, low: float, high: float, message: str, code: str) -> None:
    if value is not None and not (low <= value <= high):
        raise ServiceError(message, code=code)


def to_mmhg(value: float | None, unit: str) -> float | None:
    if value is None:
        return None
    return value * KPA_TO_MMHG if unit == GasUnit.KPA else value


def _gas_pressures_mmhg(unit: str, paco2: float | None, pao2: float | None) -> dict[str, float | None]:
    """PaCO2 and PaO2 in mmHg, refused outside their plausible ranges (which names the unit entered)."""
    if unit not in GasUnit.values:
        raise ServiceError(f"unknown unit {unit!r}; use mmHg or kPa", code="bad_unit")
    converted = {"paco2": to_mmhg(paco2, unit), "pao2": to_mmhg(pao2, unit)}
    for name, value in converted.items():
        low, high = GAS_RANGES_MMHG[name]
        if value is not None and not (low <= value <= high):
            raise ServiceError(
                f"{name.upper()} {value:.1f} mmHg is outside the plausible range {low:.0f}-{high:.0f} mmHg "
                f"(entered in {unit}: is the unit right?)", code=f"bad_{name}",
            )
    return converted


def blood_gas_create(
    *,
    patient: Patient,
    by: Any,
    sampled_at: dt.datetime,
    unit: str = GasUnit.MMHG,
    paco2: float | None = None,
    pao2: float | None = None,
    ph: float | None = None,
    hco3: float | None = None,
    lactate: float | None = None,
    sao2: float | None = None,
    fio2: float | None = None,
) -> BloodGas:
    """Record a blood gas; PaCO2/PaO2 are entered in ``unit`` and stored in mmHg."""
    permissions.require_write(by, patient.study)
    converted = _gas_pressures_mmhg(unit, paco2, pao2)
    _check_gas(ph=ph, fio2=fio2, sao2=sao2)
    gas = create_audited(BloodGas, audited_in=patient.study, by=by, tracked=GAS_AUDIT_FIELDS, patient=patient,
                         sampled_at=sampled_at, paco2_mmhg=converted["paco2"], pao2_mmhg=converted["pao2"], ph=ph,
                         hco3=hco3, lactate=lactate, sao2=sao2, fio2=fio2, unit_entered=unit)
    blood_gas_saved.send(sender=BloodGas, gas=gas)
    return gas


def _check_gas(*, ph: float | None, fio2: float | None, sao2: float | None) -> None:
    _check_range(ph, 6.5, 8.0, f"pH {ph} is outside 6.5-8.0", "bad_ph")
    _check_range(fio2, 0.21, 1.0, f"FiO2 {fio2} must be a fraction between 0.21 and 1.0", "bad_fio2")
    _check_range(sao2, 0, 100, f"SaO2 {sao2} is outside 0-100 %", "bad_sao2")


def blood_gas_update(*, gas: BloodGas, by: Any, sampled_at: dt.datetime, unit: str = GasUnit.MMHG,
                     paco2: float | None = None, pao2: float | None = None, **fields: Any) -> BloodGas:
    """Replace a blood gas's values (as :func:`blood_gas_create` takes them: pressures in ``unit``);
    audited with old and new values (``PaCO2: 41 -> 45 mmHg``)."""
    permissions.require_write(by, gas.patient.study)
    check_settable(fields, ("ph", "hco3", "lactate", "sao2", "fio2"))
    converted = _gas_pressures_mmhg(unit, paco2, pao2)
    _check_gas(ph=fields.get("ph"), fio2=fields.get("fio2"), sao2=fields.get("sao2"))
    values = {"sampled_at": sampled_at, "paco2_mmhg": converted["paco2"], "pao2_mmhg": converted["pao2"],
              "unit_entered": unit, **fields}
    update_audited(gas, fields=values, tracked=GAS_AUDIT_FIELDS, study=gas.patient.study, by=by)
    blood_gas_saved.send(sender=BloodGas, gas=gas)
    return gas
