"""The COVID-BLUES clinical mapping shared by the importer and severity training."""
from __future__ import annotations

from pathlib import Path

from scoring.core.training.covid_blues import clinical_record, clinical_rows, severity_class

ROW = {
    "pat_age": "71", "pat_sex": "1", "hist_pulm_dis": "0",
    "oth_comorbidities#Chronic_cardiovascular_disease": "1", "oth_comorbidities#Liver_disease": "0",
    "oth_comorbidities#Neurological_condition": "0", "oth_comorbidities#Stroke": "1",
    "oth_comorbidities#Diabetes_Mellitus": "0", "oth_comorbidities#Hypertonia": "1",
    "oth_comorbidities#AIDSHIV": "0", "oth_comorbidities#Malignancy": "1", "oth_comorbidities#Autoimmune_disease": "",
    "patient_symp#Fever": "1", "patient_symp#Coughing": "0", "patient_symp#Dyspnea": "-99",
    "patient_symp#AnosmiaHyposmia": "0", "patient_symp#AgeusiaDysgeusia": "1",
    "oxygen_liter": "4", "application_method#mask": "0",
    "oxygen_saturation_without_ox": "", "oxygen_saturation_with_ox": "93", "respiratory_rate": "22",
}


def test_mapping_by_hand() -> None:
    r = clinical_record(ROW)
    assert (r["age"], r["sex"]) == (71, "M")
    assert (r["cardiovascular"], r["respiratory"], r["digestive"], r["nervous"]) == (True, False, False, True)
    assert (r["diabetes"], r["hypertension"], r["immunosuppression"]) == (False, True, True)
    assert (r["fever"], r["cough"], r["dyspnea"], r["loss_of_smell_taste"]) == (True, False, None, True)
    assert r["headache"] is None  # column absent
    assert (r["oxygen_support"], r["spo2"], r["respiratory_rate"]) == ("nasal_cannula", 93.0, 22.0)


def test_oxygen_spo2_and_unanswered_comorbidities() -> None:
    base = {k: v for k, v in ROW.items() if not k.startswith("oth_comorbidities#")}
    assert clinical_record({**base, "oxygen_liter": "0"})["oxygen_support"] == "none"
    assert clinical_record({**base, "oxygen_liter": ""})["oxygen_support"] == ""
    assert clinical_record({**base, "application_method#mask": "1"})["oxygen_support"] == "mask"
    assert clinical_record({**base, "oxygen_saturation_without_ox": "88"})["spo2"] == 88.0
    assert clinical_record({**base, "oxygen_saturation_with_ox": "930"})["spo2"] is None  # not a percentage
    assert clinical_record({**base, "pat_sex": "-99"})["sex"] is None
    blank = {**base, **{k: "" for k in ROW if k.startswith("oth_comorbidities#")}}
    r = clinical_record(blank)
    assert r["diabetes"] is None and r["immunosuppression"] is None and r["respiratory"] is False


def test_importer_stores_the_same_mapping(shared_data: Path) -> None:
    from patients.research.importers import _cb_clinical

    rows = clinical_rows(shared_data / "covid-blues")
    assert len(rows) == 42
    for row in rows.values():
        shared = clinical_record(row)
        shared.pop("sex")
        assert _cb_clinical(row) == shared
    classes = [severity_class(r) for r in rows.values()]
    assert [classes.count(c) for c in range(4)] == [4, 18, 14, 6]  # mild, moderate, severe, critical
