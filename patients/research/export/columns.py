"""The export's columns: name, type, unit and meaning of each, in order (the data dictionary)."""
from __future__ import annotations

from dataclasses import dataclass

from patients.records.models import ClinicalInfo, Exam
from patients.research.export.params import ExportParams
from patients.studies.models import Study
from patients.studies.protocols import PROTOCOLS, get_protocol
from scoring.core.inference.six_class import SIX_CLASS_SCALE, SIX_CLASSES

SEVERITY_LABELS = ("mild", "moderate", "severe", "critical")


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # string | integer | number | boolean (0/1) | date | datetime | json
    unit: str
    meaning: str


def _c(name: str, type_: str, unit: str, meaning: str) -> Column:
    return Column(name, type_, unit, meaning)


_HEAD = [
    _c("study", "string", "", "Study name"),
    _c("patient", "string", "", "Patient pseudonym: stable within the study, not reversible without the study secret"),
]
_IDENTIFYING_PATIENT = [
    _c("patient_code", "string", "", "The study's own patient code (clinicians and study admins only)"),
    _c("admission_date", "date", "", "Admission date (clinicians and study admins only)"),
]
_EXAM_HEAD = [
    _c("exam_id", "integer", "", "Exam id in LUSWeb"),
    _c("exam_number", "integer", "", "1 for the patient's first exam, 2 for the second ..."),
    _c("day", "number", "days", "Exam time minus the admission date (00:00), or minus the first exam when the admission date is unknown"),
    _c("day_origin", "string", "", "'admission' or 'first_exam': what day 0 is"),
]
_IDENTIFYING_EXAM = [_c("acquired_at", "datetime", "ISO 8601", "Exam time (clinicians and study admins only)")]
_SEX = [_c("sex", "string", "", "F, M, O (other) or U (unknown)")]
_ZONE = [
    _c("zone", "string", "", "Lung zone code of the exam's protocol (R1 ... L7)"),
    _c("clip_id", "integer", "", "Zone clip id in LUSWeb"),
    _c("score", "integer", "0-3", "The exported model's Soldati score of the zone (the AI's; record_score is the "
                                  "score of record)"),
    _c("p0", "number", "probability", "AI probability of score 0"),
    _c("p1", "number", "probability", "AI probability of score 1"),
    _c("p2", "number", "probability", "AI probability of score 2"),
    _c("p3", "number", "probability", "AI probability of score 3"),
    _c("findings", "json", "probability", "AI finding probabilities (A-lines, B-lines, consolidation ...)"),
    _c("aggregator", "string", "", "How frame scores were aggregated into the clip score"),
    _c("override_score", "integer", "0-3", "Latest clinician reading of the zone (or adjudication), if any"),
    _c("final_score", "integer", "0-3", "The score of record of the zone (record_score)"),
    _c("ai_score", "integer", "0-3", "The AI's reading of the zone (the active model's), the one the record falls "
                                     "back on; score is the exported model's"),
    _c("clinician_score", "integer", "0-3", "Latest clinician or adjudication reading of the zone, if any"),
    _c("record_score", "integer", "0-3", "Score of record: the latest adjudication, else the latest clinician "
                                         "reading, else the AI's reading"),
    _c("record_source", "string", "", "Source of the score of record: clinician, adjudication or ai (AI, not "
                                      "reviewed)"),
    _c("reviewer", "string", "", "Username of the reader whose reading is the record (empty for the AI)"),
]
#: The exam columns repeated on every zone row.
ZONE_LEVEL_EXAM_COLUMNS = ("luss", "luss_final", "review_status")
_SIGNED_AT = _c("signed_at", "datetime", "ISO 8601", "Time of the exam's latest sign-off (clinicians and study "
                                                     "admins only)")
_SIGNED_DAY = _c("signed_day", "number", "days", "Day of the exam's latest sign-off (see day)")
_MODEL = [_c("model_version", "string", "", "Model version of the scores")]
_EXAM_SCORES = [
    _c("protocol", "string", "", "Lung-zone protocol of the exam"),
    _c("zones_recorded", "integer", "zones", "Zones with a clip"),
    _c("luss", "integer", "points", "Global LUS score of record: sum of the zones' record scores (each zone's "
                                    "latest adjudication, else clinician reading, else the AI's reading), as every "
                                    "page shows it"),
    _c("max_luss", "integer", "points", "3 x the number of protocol zones"),
    _c("mean_score", "number", "0-3", "Mean record score of the zones with one"),
    _c("worst_zone", "string", "", "Zone with the highest record score"),
    _c("zones_ge2", "integer", "zones", "Zones with a record score of 2 or more"),
    _c("coverage", "number", "fraction", "Zones with a record score / protocol zones"),
    _c("overrides", "integer", "zones", "Zones whose score of record is a clinician's (or an adjudication)"),
    _c("luss_final", "integer", "points", "Same as luss (the global LUS score of record); kept for older scripts"),
    _c("luss_ai", "integer", "points", "Sum of the AI's readings of the zones (the active model's)"),
    _c("luss_model", "integer", "points", "Sum of the exported model's zone scores (model_version; model= chooses it)"),
    _c("review_status", "string", "", "draft (AI only, not signed), reviewed (signed off) or amended (a reading "
                                      "changed after sign-off)"),
    _c("reviewer", "string", "", "Username of the clinician who signed the exam off last"),
]
# The six-class scale of Hu et al. (``scoring.core.inference.six_class``): always the AI's, from the
# exported model's findings (``scoring.selectors.six_class_of_jobs``).
_SIX_SCALE = (f"the {SIX_CLASS_SCALE} (each frame's class value: "
              + ", ".join(f"{name} {value:g}" for name, value in SIX_CLASSES)
              + "), from the exported model's findings (model_version); always the AI's: no clinician reads this "
                "scale; empty when the scores carry none")
_EXAM_SIX = [
    _c("ai_six_class_mean", "number", "0-4", "AI exam severity: mean over all frames of the exam's scored clips (a "
                                             f"clip weighs by its frame count) on {_SIX_SCALE}"),
    _c("ai_six_class_frames", "integer", "frames", "Frames averaged in ai_six_class_mean: those of the exam's clips "
                                                   "with a six-class result"),
]
_ZONE_SIX = [
    _c("zone_ai_six_class_mean", "number", "0-4", f"AI severity of the zone's clip: mean over its frames on {_SIX_SCALE}"),
    _c("zone_ai_six_class_dominant", "string", "", "Six-class class of most of the clip's frames (a tie goes to the "
                                                   "more severe class): "
                                                   + ", ".join(name for name, _ in SIX_CLASSES)),
]
_SEVERITY = [
    _c("severity_now", "string", "", "Severity now: the exam day's Chinese COVID-19 guideline class from the clinical "
                                     "record and the blood gas nearest the exam within 24 h (mild_or_moderate, severe, "
                                     "critical); empty when a missing input leaves it undetermined"),
    _c("who_scale", "string", "", "WHO clinical progression scale of the exam day: a level, or a range where an "
                                  "unrecorded item could move it (1-4: no oxygen, hospitalisation not recorded; 7-9: "
                                  "ventilated without P/F); empty when the oxygen support is not recorded"),
    _c("severity_now_missing", "string", "", "The inputs severity now lacked, separated by '; '"),
    _c("risk_severe_course", "number", "probability", "Risk model: P(severe course of the stay: oxygen therapy, ICU "
                                                      "or death on any day), clipped to 0.01-0.99; not the state at "
                                                      "the exam"),
    _c("risk_calibrated", "boolean", "0/1", "1 when the installed, calibrated risk model made the prediction "
                                            "(temperature scaling fitted out of fold), 0 for an older model's"),
    _c("severity", "string", "", "Risk model's predicted course class of the stay (mild, moderate, severe, "
                                 "critical), not the state at the exam (that is severity_now); kept for older scripts"),
    *[_c(f"severity_p_{label}", "number", "probability", f"Risk model: probability of a {label} course, clipped to "
                                                         "0.01-0.99") for label in SEVERITY_LABELS],
    _c("severe_probability", "number", "probability", "Same as risk_severe_course; kept for older scripts"),
]
_GAS = [
    _c("gas_hours_from_exam", "number", "hours", "Blood-gas time minus exam time (nearest gas within the window)"),
    _c("paco2_mmhg", "number", "mmHg", "PaCO2"),
    _c("pao2_mmhg", "number", "mmHg", "PaO2"),
    _c("ph", "number", "", "pH"),
    _c("hco3", "number", "mmol/L", "Bicarbonate"),
    _c("lactate", "number", "mmol/L", "Lactate"),
    _c("sao2", "number", "%", "Arterial oxygen saturation"),
    _c("fio2", "number", "fraction", "Inspired oxygen fraction (0.21-1.0)"),
    _c("pf_ratio", "number", "mmHg", "PaO2 / FiO2"),
]
_CLINICAL = [
    _c("clinical_days_before_exam", "number", "days", "Exam time minus the time of the clinical record used"),
    _c("age", "integer", "years", "Age at the clinical record"),
    *[_c(name, "boolean", "0/1", f"Comorbidity: {name.replace('_', ' ')}") for name in ClinicalInfo.COMORBIDITIES],
    *[_c(name, "boolean", "0/1", f"Symptom: {name.replace('_', ' ')}") for name in ClinicalInfo.SYMPTOMS],
    _c("oxygen_support", "string", "", "none, nasal_cannula, mask, hfnc, niv, invasive, ecmo"),
    _c("spo2", "number", "%", "Peripheral oxygen saturation"),
    _c("respiratory_rate", "number", "breaths/min", "Respiratory rate"),
]
_PATIENT = [
    _c("exams", "integer", "", "Number of exams"),
    _c("clips", "integer", "", "Number of zone clips"),
    _c("first_exam_day", "number", "days", "Day of the first exam (see day)"),
    _c("last_exam_day", "number", "days", "Day of the last exam"),
    _c("first_luss", "integer", "points", "Global LUS score of record of the first exam with one"),
    _c("last_luss", "integer", "points", "Global LUS score of record of the last exam with one"),
    _c("first_ai_six_class_mean", "number", "0-4", "ai_six_class_mean (the AI's six-class exam severity, see the "
                                                    "exam export) of the first exam with one"),
    _c("last_ai_six_class_mean", "number", "0-4", "ai_six_class_mean of the last exam with one"),
    _c("first_luss_final", "integer", "points", "Same as first_luss; kept for older scripts"),
    _c("last_luss_final", "integer", "points", "Same as last_luss; kept for older scripts"),
    _c("exams_reviewed", "integer", "", "Exams signed off (reviewed or amended)"),
    _c("max_luss", "integer", "points", "Highest global LUS score of record"),
    _c("max_luss_day", "number", "days", "Day of the exam with the highest global LUS score of record"),
    _c("last_severity", "string", "", "Risk model's predicted course class at the last exam with a prediction "
                                      "(not the state at that exam)"),
    _c("age", "integer", "years", "Age at the latest clinical record"),
]


def wide_zones(study: Study) -> list[str]:
    """The zone columns of a wide export, each named with its protocol (``blue-6:R3``, since a
    BLUE-6 R3 is not a 12-zone R3): the study protocol's, then other protocols' in use."""
    used = set(Exam.objects.filter(patient__study=study).values_list("protocol", flat=True).distinct())
    keys = [study.protocol] + sorted(k for k in used - {study.protocol} if k in PROTOCOLS)
    return [get_protocol(k).column(code) for k in keys for code in get_protocol(k).codes]


def patient_head(params: ExportParams) -> list[Column]:
    """The columns that open every row: study, pseudonym (the study's codes for those who may see
    them) and sex."""
    return list(_HEAD) + (_IDENTIFYING_PATIENT if params.identifying else []) + _SEX


def columns(study: Study, params: ExportParams) -> list[Column]:
    """The export's columns, in order."""
    head = patient_head(params)
    if params.level == "patient":
        return head + _PATIENT
    exam_head = list(_EXAM_HEAD) + (_IDENTIFYING_EXAM if params.identifying else [])
    signed = [_SIGNED_AT if params.identifying else _SIGNED_DAY]
    if params.wide:
        zones: list[Column] = []
        for code in wide_zones(study):
            zones += [_c(f"zone_{code}_score", "integer", "0-3", f"AI score of zone {code} (exams of that protocol)"),
                      _c(f"zone_{code}_override", "integer", "0-3",
                         f"Latest clinician reading of zone {code}, if any")]
        records = [_c(f"record_{code}", "integer", "0-3", f"Score of record of zone {code} (exams of that protocol)")
                   for code in wide_zones(study)]
        six = [_c(f"ai_six_class_{code}", "number", "0-4", f"AI six-class severity of zone {code}'s clip (see "
                                                            "zone_ai_six_class_mean of the zone export)")
               for code in wide_zones(study)]
        return (head + exam_head + _MODEL + _EXAM_SCORES + signed + _EXAM_SIX + zones + records + six + _SEVERITY
                + _GAS + _CLINICAL)
    if params.level == "exam":
        return head + exam_head + _MODEL + _EXAM_SCORES + signed + _EXAM_SIX + _SEVERITY + _GAS + _CLINICAL
    exam_scores = [c for c in _EXAM_SCORES if c.name in ZONE_LEVEL_EXAM_COLUMNS]
    return (head + exam_head + _ZONE + signed + _MODEL + exam_scores + _ZONE_SIX + _EXAM_SIX[:1] + _SEVERITY + _GAS
            + _CLINICAL)
