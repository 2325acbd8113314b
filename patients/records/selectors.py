"""Clinical record reads, always scoped to what the user may see."""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import CharField, F, FloatField, QuerySet, Value
from django.shortcuts import get_object_or_404

from patients.records import pairing
from patients.records.models import BloodGas, ClinicalInfo, Exam, Patient
from patients.records.severity_now import WINDOW_HOURS, SeverityNow, StateInputs, pf_ratio, severity_now
from patients.studies import permissions
from patients.studies.models import Study
from patients.studies.permissions import role_or_404


def patient_list(*, user: Any, study: Study | int | None = None) -> QuerySet[Patient]:
    qs = Patient.objects.select_related("study")
    if not user.is_superuser:
        qs = qs.filter(study__memberships__user=user)
    if study is not None:
        qs = qs.filter(study=study)
    return qs.order_by("study__name", "code")


def exam_list(*, user: Any, patient: Patient | int | None = None) -> QuerySet[Exam]:
    qs = Exam.objects.select_related("patient", "patient__study")
    if not user.is_superuser:
        qs = qs.filter(patient__study__memberships__user=user)
    if patient is not None:
        qs = qs.filter(patient=patient)
    return qs.order_by("patient__code", "acquired_at")


def blood_gas_list(*, patient: Patient) -> QuerySet[BloodGas]:
    return BloodGas.objects.filter(patient=patient).order_by("sampled_at")


def clinical_info_list(*, patient: Patient) -> QuerySet[ClinicalInfo]:
    return ClinicalInfo.objects.filter(patient=patient).order_by("recorded_at")


def patient_for(*, user: Any, pk: int) -> tuple[Patient, str]:
    """The patient (with its study) and the user's role; 404 for outsiders too."""
    patients = Patient.objects.select_related("study")
    if getattr(user, "is_authenticated", False) and not user.is_superuser:
        # The role in the same query: every patient page asks for it at once.
        annotated: Any = patients.annotate(member_role=permissions.role_subquery(user, "study_id"))
        patient = get_object_or_404(annotated, pk=pk)
        permissions.role_remember(user, patient.study_id, patient.member_role)
    else:
        patient = get_object_or_404(patients, pk=pk)
    return patient, role_or_404(user, patient.study)


def exam_for(*, user: Any, pk: int) -> tuple[Exam, str]:
    """The exam (with its patient and study) and the user's role; 404 for outsiders too."""
    exam = get_object_or_404(Exam.objects.select_related("patient__study"), pk=pk)
    return exam, role_or_404(user, exam.study)


@dataclass(frozen=True)
class ExamState:
    """An exam's severity now with the records it was read from (None: none within the window)."""

    now: SeverityNow
    clinical_record: int | None
    clinical_hours: float | None  # record time minus exam time
    blood_gas: int | None
    gas_hours: float | None  # gas time minus exam time

    def as_dict(self) -> dict[str, Any]:
        """The API's ``severity_now`` block."""
        return {**self.now.as_dict(), "clinical_record": self.clinical_record, "clinical_hours": self.clinical_hours,
                "blood_gas": self.blood_gas, "gas_hours": self.gas_hours, "window_hours": WINDOW_HOURS}


_STATE_COLUMNS = ("pk", "patient_id", "x_kind", "x_at", "x_o2", "x_spo2", "x_rr", "x_paco2", "x_pao2", "x_fio2", "x_ph")


def clinical_and_gases(*, patient_ids: Iterable[int]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The patients' clinical records (``pk``, ``patient_id``, ``recorded_at``, ``oxygen_support``,
    ``spo2``, ``respiratory_rate``) and blood gases (``pk``, ``patient_id``, ``sampled_at``,
    ``paco2_mmhg``, ``pao2_mmhg``, ``fio2``, ``ph``, ``pf_ratio``), each in time order, in one query
    (UNION ALL): what severity now reads, and the gas columns the timeline plots."""
    ids = list(patient_ids)

    def none() -> Value:
        return Value(None, output_field=FloatField())

    clinical = ClinicalInfo.objects.filter(patient_id__in=ids).annotate(
        x_kind=Value("c", output_field=CharField()), x_at=F("recorded_at"), x_o2=F("oxygen_support"), x_spo2=F("spo2"),
        x_rr=F("respiratory_rate"), x_paco2=none(), x_pao2=none(), x_fio2=none(), x_ph=none()).values(*_STATE_COLUMNS)
    gases = BloodGas.objects.filter(patient_id__in=ids).annotate(
        x_kind=Value("g", output_field=CharField()), x_at=F("sampled_at"), x_o2=Value("", output_field=CharField()),
        x_spo2=none(), x_rr=none(), x_paco2=F("paco2_mmhg"), x_pao2=F("pao2_mmhg"), x_fio2=F("fio2"),
        x_ph=F("ph")).values(*_STATE_COLUMNS)
    records: list[dict[str, Any]] = []
    gas_rows: list[dict[str, Any]] = []
    # No ORDER BY inside the UNION (the models' default ordering): SQLite refuses it in a compound
    # statement, and the rows are put in time order here anyway.
    for r in sorted(clinical.order_by().union(gases.order_by(), all=True), key=lambda r: (r["x_at"], r["pk"])):
        if r["x_kind"] == "c":
            records.append({"pk": r["pk"], "patient_id": r["patient_id"], "recorded_at": r["x_at"],
                            "oxygen_support": r["x_o2"], "spo2": r["x_spo2"], "respiratory_rate": r["x_rr"]})
        else:
            gas_rows.append({"pk": r["pk"], "patient_id": r["patient_id"], "sampled_at": r["x_at"],
                             "paco2_mmhg": r["x_paco2"], "pao2_mmhg": r["x_pao2"], "fio2": r["x_fio2"], "ph": r["x_ph"],
                             "pf_ratio": pf_ratio(r["x_pao2"], r["x_fio2"])})
    return records, gas_rows


def severity_now_for(*, exams: Sequence[tuple[int, int, dt.datetime]],
                     loaded: tuple[list[dict[str, Any]], list[dict[str, Any]]] | None = None) -> dict[int, ExamState]:
    """Severity now of each exam (``(exam id, patient id, acquired_at)``): the WHO level and the
    guideline class from the clinical record nearest the exam and the nearest blood gas with
    PaO2 and FiO2, each within +-``WINDOW_HOURS`` (:mod:`patients.records.severity_now`).
    ``loaded``: the patients' :func:`clinical_and_gases` when the caller has them already; else one
    query, whatever the number of exams."""
    if not exams:
        return {}
    rows = loaded if loaded is not None else clinical_and_gases(patient_ids={p for _, p, _ in exams})
    records = {r["pk"]: r for r in rows[0]}
    gases = {g["pk"]: g for g in rows[1]}
    points = [pairing.ExamPoint(key=k, group=p, at=at, score=0.0) for k, p, at in exams]
    near_record = {pair.exam: pair for pair in pairing.pair_nearest(
        points, [pairing.GasPoint(key=r["pk"], group=r["patient_id"], at=r["recorded_at"], value=1.0)
                 for r in records.values()], WINDOW_HOURS)}
    near_gas = {pair.exam: pair for pair in pairing.pair_nearest(
        points, [pairing.GasPoint(key=g["pk"], group=g["patient_id"], at=g["sampled_at"],
                                  value=g["pf_ratio"]) for g in gases.values()], WINDOW_HOURS)}
    out: dict[int, ExamState] = {}
    for key, _, _ in exams:
        rp, gp = near_record.get(key), near_gas.get(key)
        record_id = int(rp.gas) if rp else None  # type: ignore[call-overload]  # the keys are our pks
        gas_id = int(gp.gas) if gp else None  # type: ignore[call-overload]
        r: dict[str, Any] = dict(records[record_id]) if record_id is not None else {}
        g: dict[str, Any] = dict(gases[gas_id]) if gas_id is not None else {}
        inputs = StateInputs(oxygen_support=r.get("oxygen_support") or None, spo2=r.get("spo2"),
                             respiratory_rate=r.get("respiratory_rate"), pao2_mmhg=g.get("pao2_mmhg"),
                             fio2=g.get("fio2"))
        out[key] = ExamState(severity_now(inputs), record_id, round(rp.hours_apart, 1) if rp else None,
                             gas_id, round(gp.hours_apart, 1) if gp else None)
    return out
