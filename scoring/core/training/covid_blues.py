"""Reading the COVID-BLUES dataset in place: clips, expert scores, clinical records, outcome class.

Severity classes from the recorded course (in the spirit of the China NHC guideline used by
Xue et al. 2021), applied in this order:

* **critical**: ICU stay or death recorded on any follow-up day (``outcome_status_d0..d30`` = 0 or 3);
* **severe**: oxygen therapy during the admission (``oxygen_thepary`` = 1);
* **moderate**: hospitalised on day 0 (``outcome_status_d0`` = 1);
* **mild**: otherwise (discharged from the emergency department on day 0, no oxygen, no ICU).

``stay_icu`` is not used: in this release it contradicts ``outcome_status_d0`` for 10 of 42
patients (e.g. "admitted to ICU" together with "discharged on day 0").
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CLIP_RE = re.compile(r"patient_(\d+)_([LR][1-3])(_2)?$")


@dataclass(frozen=True)
class CovidBluesClip:
    patient: str
    zone: str
    path: Path
    score: int
    a_lines: bool | None
    b_lines: bool | None
    comment: str
    second: bool  # a second clip of the same zone (`_2`)


def number(value: str | None) -> float | None:
    """A CSV cell as a number; None when empty, unparsable or a missing-value sentinel (-99 ...)."""
    try:
        number = float(value or "")
    except ValueError:
        return None
    return None if number <= -90 else number  # -99 marks "not recorded"


def _yes(value: str | None) -> bool | None:
    v = (value or "").strip().lower()
    return True if v == "yes" else False if v == "no" else None


def clips(root: Path) -> list[CovidBluesClip]:
    """Every clip with its expert Soldati score, in file-name order."""
    out = []
    with (root / "severity.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            m = CLIP_RE.match(row["video_file"].strip())
            if not m:
                continue
            path = root / "lus_videos" / f"{row['video_file'].strip()}.mp4"
            out.append(CovidBluesClip(m.group(1), m.group(2), path, int(float(row["Severity Score"])),
                                      _yes(row.get("A-lines")), _yes(row.get("B-lines")),
                                      (row.get("comments") or "").strip(), bool(m.group(3))))
    return sorted(out, key=lambda c: (int(c.patient), c.zone, c.second))


def clinical_rows(root: Path) -> dict[str, dict[str, str]]:
    with (root / "clinical_variables.csv").open(newline="") as fh:
        return {row["patient_id"].strip(): row for row in csv.DictReader(fh)}


def severity_class(row: dict[str, str]) -> int:
    """0 mild, 1 moderate, 2 severe, 3 critical (rule in the module docstring)."""
    outcomes = [number(row.get(f"outcome_status_d{d}")) for d in (0, 1, 3, 5, 7, 30)]
    if any(o in (0.0, 3.0) for o in outcomes):
        return 3
    if number(row.get("oxygen_thepary")) == 1:
        return 2
    if outcomes[0] == 1.0:
        return 1
    return 0


def _flag(row: dict[str, str], *columns: str) -> bool | None:
    values = [number(row.get(c)) for c in columns]
    known = [v for v in values if v is not None]
    return None if not known else any(v >= 1 for v in known)


def clinical_record(row: dict[str, str]) -> dict[str, Any]:
    """Map the 127 COVID-BLUES variables onto LUSWeb's clinical record (presentation values).

    The one mapping used both by the importer (``patients.research.importers``, what the platform
    stores and the severity model reads in production) and by severity training, so the model
    is trained on exactly what it is later served:

    * age ``pat_age``; sex ``pat_sex`` (0 female, 1 male; the importer puts it on the patient);
    * comorbidities: cardiovascular = chronic cardiovascular disease, respiratory = history of
      pulmonary disease, digestive = liver disease, nervous = neurological condition or stroke,
      diabetes, hypertension = "Hypertonia", immunosuppression = AIDS/HIV, malignancy or
      autoimmune disease; all unknown when the row has no comorbidity answers at all;
    * symptoms fever, cough (coughing), dyspnea, sore throat, diarrhea, headache, fatigue, loss
      of smell/taste (anosmia or ageusia);
    * oxygen support: unknown without ``oxygen_liter``, none at 0 l/min, mask when
      ``application_method#mask`` is set, else nasal cannula;
    * SpO2 without oxygen, else with oxygen (0-100 only); respiratory rate.
    """
    sex = number(row.get("pat_sex"))
    liters = number(row.get("oxygen_liter"))
    if liters is None:
        oxygen = ""
    elif liters <= 0:
        oxygen = "none"
    else:
        oxygen = "mask" if _flag(row, "application_method#mask") else "nasal_cannula"
    answered = any((row.get(k) or "").strip() for k in row if k.startswith("oth_comorbidities#"))

    def comorbidity(*names: str) -> bool | None:
        return _flag(row, *[f"oth_comorbidities#{n}" for n in names]) if answered else None

    age = number(row.get("pat_age"))
    spo2 = number(row.get("oxygen_saturation_without_ox"))
    if spo2 is None:
        spo2 = number(row.get("oxygen_saturation_with_ox"))
    return {
        "age": int(age) if age is not None else None,
        "sex": None if sex not in (0.0, 1.0) else ("M" if sex == 1 else "F"),
        "cardiovascular": comorbidity("Chronic_cardiovascular_disease"),
        "respiratory": _flag(row, "hist_pulm_dis"),
        "digestive": comorbidity("Liver_disease"),
        "nervous": comorbidity("Neurological_condition", "Stroke"),
        "diabetes": comorbidity("Diabetes_Mellitus"),
        "hypertension": comorbidity("Hypertonia"),
        "immunosuppression": comorbidity("AIDSHIV", "Malignancy", "Autoimmune_disease"),
        "fever": _flag(row, "patient_symp#Fever"),
        "cough": _flag(row, "patient_symp#Coughing"),
        "dyspnea": _flag(row, "patient_symp#Dyspnea"),
        "sore_throat": _flag(row, "patient_symp#Sore_throat"),
        "diarrhea": _flag(row, "patient_symp#Diarrhea"),
        "headache": _flag(row, "patient_symp#Headache"),
        "fatigue": _flag(row, "patient_symp#Fatigue"),
        "loss_of_smell_taste": _flag(row, "patient_symp#AnosmiaHyposmia", "patient_symp#AgeusiaDysgeusia"),
        "oxygen_support": oxygen,
        "spo2": spo2 if spo2 is None or 0 <= spo2 <= 100 else None,
        "respiratory_rate": number(row.get("respiratory_rate")),
    }
