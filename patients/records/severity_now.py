"""Severity now: the patient's state on the exam day, from the clinical record and the blood gas.

Two published scales, decided by a fixed rule from what LUSWeb records (``ClinicalInfo``: oxygen
support, SpO2, respiratory rate; ``BloodGas``: PaO2 and FiO2, hence P/F):

* the **WHO clinical progression scale** (WHO Working Group, Lancet Infect Dis 2020): 4
  hospitalised without oxygen, 5 oxygen by mask or nasal prongs, 6 non-invasive ventilation or
  high-flow oxygen, 7 mechanical ventilation with P/F >= 150, 8 with P/F < 150 or vasopressors,
  9 with P/F < 150 and vasopressors, dialysis or ECMO, 10 dead;
* the **Chinese COVID-19 guideline class** (NHC diagnosis and treatment protocol): *severe* when
  any of respiratory rate >= 30/min, SpO2 <= 93 % at rest, PaO2/FiO2 <= 300 mmHg; *critical*
  with respiratory failure needing mechanical ventilation, shock, or organ failure needing ICU
  care; otherwise *mild* or *moderate* - told apart by pneumonia on imaging, which this clinical
  rule does not read, so it says "mild or moderate".

LUSWeb does not record hospitalisation, vasopressors, dialysis, shock, ICU admission or death.
So a result is a *range* whenever an unrecorded or missing item could move it (no oxygen is WHO
1-4: 4 if in hospital), each missing input is named, and nothing is guessed. "Critical" is
decided from mechanical ventilation (invasive or ECMO) only.

Pure (no Django), like :mod:`patients.records.pairing`: the pages, the API and the export build
:class:`StateInputs` from the records (``patients.records.selectors.severity_now_for``) and get
the same answer, and the class boundaries are unit-tested on plain values. It lives in
``patients.records`` because it reads only clinical records: every layer above (scoring,
dashboards, research) may use it, and it needs nothing from them.
"""
from __future__ import annotations

from dataclasses import dataclass

#: How far (hours, either side) from the exam a clinical value or a blood gas still describes
#: the exam day. Beyond it an input counts as missing.
WINDOW_HOURS = 24.0

#: The guideline classes in order; "mild or moderate" is one class here (imaging tells them apart).
GUIDELINE_CLASSES: tuple[str, ...] = ("mild_or_moderate", "severe", "critical")
GUIDELINE_TEXT = {"mild_or_moderate": "mild or moderate", "severe": "severe", "critical": "critical"}

#: Guideline thresholds (inclusive, as the guideline words them).
RR_SEVERE = 30.0  # breaths/min, >=
SPO2_SEVERE = 93.0  # %, <=
PF_SEVERE = 300.0  # mmHg, <=
#: WHO 7 versus 8-9 for a mechanically ventilated patient.
PF_WHO_MV = 150.0  # mmHg, >= 150 is WHO 7

OXYGEN_WHO: dict[str, tuple[int, int]] = {
    # No oxygen: 4 if in hospital, 1-3 if not; LUSWeb does not record which.
    "none": (1, 4),
    "nasal_cannula": (5, 5), "mask": (5, 5),
    "hfnc": (6, 6), "niv": (6, 6),
    "ecmo": (9, 9),
}
VENTILATED = frozenset({"invasive", "ecmo"})

WHO_TEXT = {
    1: "ambulatory", 2: "ambulatory", 3: "ambulatory", 4: "hospitalised, no oxygen",
    5: "oxygen by mask or nasal prongs", 6: "non-invasive ventilation or high-flow oxygen",
    7: "mechanical ventilation, P/F >= 150", 8: "mechanical ventilation, P/F < 150 or vasopressors",
    9: "mechanical ventilation with vasopressors, dialysis or ECMO", 10: "dead",
}

#: What the rule can never know from LUSWeb's records, shown beside every result.
NOT_RECORDED = ("hospitalisation, vasopressors, dialysis, shock, ICU admission and death are not recorded: "
                "critical is decided from mechanical ventilation only, WHO 10 never")


@dataclass(frozen=True)
class StateInputs:
    """The values nearest the exam (None = none within :data:`WINDOW_HOURS`).

    ``oxygen_support`` is a ``patients.records.models.OxygenSupport`` value ("" or None: unknown);
    ``fio2`` a fraction (0.21-1.0) as the blood gas stores it.
    """

    oxygen_support: str | None = None
    spo2: float | None = None
    respiratory_rate: float | None = None
    pao2_mmhg: float | None = None
    fio2: float | None = None


@dataclass(frozen=True)
class SeverityNow:
    """The state on the exam day. A bound is None when nothing at all could be decided."""

    who_low: int | None
    who_high: int | None
    guideline_low: str | None
    guideline_high: str | None
    criteria: tuple[str, ...]  # what decided it, e.g. "SpO2 91 % <= 93 %"
    missing: tuple[str, ...]  # inputs that were missing and could change the result
    pf_ratio: float | None

    @property
    def who_text(self) -> str:
        """"5", "7-8", or "unknown"."""
        if self.who_low is None or self.who_high is None:
            return "unknown"
        return str(self.who_low) if self.who_low == self.who_high else f"{self.who_low}-{self.who_high}"

    @property
    def who_meaning(self) -> str:
        """The WHO level's words, for the range's upper end (4: hospitalised, no oxygen)."""
        if self.who_high is None:
            return "oxygen support not recorded near the exam"
        if self.who_low == 1 and self.who_high == 4:
            return "no oxygen; 4 if in hospital"
        return WHO_TEXT[self.who_high] if self.who_low == self.who_high else (
            f"{WHO_TEXT[self.who_low or self.who_high]} to {WHO_TEXT[self.who_high]}")

    @property
    def guideline(self) -> str | None:
        """The guideline class when decided, else None."""
        return self.guideline_low if self.guideline_low == self.guideline_high else None

    @property
    def guideline_text(self) -> str:
        """"severe", "severe or critical", "undetermined (mild or moderate to critical)"..."""
        lo, hi = self.guideline_low, self.guideline_high
        if lo is None or hi is None:
            return "undetermined"
        if lo == hi:
            return GUIDELINE_TEXT[lo]
        if GUIDELINE_CLASSES.index(hi) - GUIDELINE_CLASSES.index(lo) == 1:
            return f"{GUIDELINE_TEXT[lo]} or {GUIDELINE_TEXT[hi]}"
        return f"undetermined ({GUIDELINE_TEXT[lo]} to {GUIDELINE_TEXT[hi]})"

    def as_dict(self) -> dict[str, object]:
        """The API's and the export's form."""
        return {"who_scale": self.who_text, "who_low": self.who_low, "who_high": self.who_high,
                "who_meaning": self.who_meaning, "guideline_class": self.guideline,
                "guideline_low": self.guideline_low, "guideline_high": self.guideline_high,
                "guideline_text": self.guideline_text, "criteria": list(self.criteria),
                "missing": list(self.missing), "pf_ratio": self.pf_ratio, "not_recorded": NOT_RECORDED}


def pf_ratio(pao2_mmhg: float | None, fio2: float | None) -> float | None:
    """PaO2/FiO2 in mmHg; None unless both are known (and FiO2 > 0)."""
    if pao2_mmhg is None or not fio2:
        return None
    return pao2_mmhg / fio2


def who_scale(oxygen: str | None, pf: float | None) -> tuple[int | None, int | None, list[str]]:
    """(lowest, highest) WHO level the record allows, and what was missing."""
    if not oxygen:
        return None, None, ["oxygen support"]
    if oxygen in OXYGEN_WHO:
        return (*OXYGEN_WHO[oxygen], [])
    # Invasive ventilation: P/F splits 7 from 8-9; vasopressors / dialysis (not recorded) would raise it.
    if pf is None:
        return 7, 9, ["P/F (a blood gas with PaO2 and FiO2)"]
    return (7, 8, []) if pf >= PF_WHO_MV else (8, 9, [])


def guideline_class(oxygen: str | None, spo2: float | None, rr: float | None, pf: float | None
                    ) -> tuple[str, str, list[str], list[str]]:
    """(lowest, highest) guideline class, the criteria met, and the inputs that were missing."""
    criteria: list[str] = []
    if oxygen in VENTILATED:
        word = "ECMO" if oxygen == "ecmo" else "invasive mechanical ventilation"
        return "critical", "critical", [word], []
    if rr is not None and rr >= RR_SEVERE:
        criteria.append(f"respiratory rate {rr:g}/min >= {RR_SEVERE:g}")
    if spo2 is not None and spo2 <= SPO2_SEVERE:
        criteria.append(f"SpO2 {spo2:g} % <= {SPO2_SEVERE:g} %")
    if pf is not None and pf <= PF_SEVERE:
        criteria.append(f"P/F {pf:.0f} <= {PF_SEVERE:g} mmHg")
    # Critical cannot be excluded without knowing whether the patient is ventilated.
    top, missing = ("severe", []) if oxygen else ("critical", ["oxygen support"])
    if criteria:
        return "severe", top, criteria, missing
    if rr is None:
        missing.append("respiratory rate")
    if spo2 is None:
        missing.append("SpO2")
    # On room air the P/F criterion (PaO2 <= 63 mmHg at FiO2 0.21) lies below SpO2 93 %, so an SpO2
    # above 93 % breathing air stands for a missing P/F; on oxygen (or unknown support) it does not.
    if pf is None and not (oxygen == "none" and spo2 is not None):
        missing.append("P/F (a blood gas with PaO2 and FiO2)" if oxygen else "P/F, or SpO2 known to be on room air")
    if not missing:
        return "mild_or_moderate", "mild_or_moderate", [], []
    return "mild_or_moderate", top, [], missing


def severity_now(inputs: StateInputs) -> SeverityNow:
    """The WHO level and the guideline class of the exam day (see the module docstring)."""
    oxygen = inputs.oxygen_support or None
    pf = pf_ratio(inputs.pao2_mmhg, inputs.fio2)
    who_lo, who_hi, who_missing = who_scale(oxygen, pf)
    g_lo, g_hi, criteria, g_missing = guideline_class(oxygen, inputs.spo2, inputs.respiratory_rate, pf)
    missing = tuple(dict.fromkeys([*who_missing, *g_missing]))  # in order, once each
    return SeverityNow(who_low=who_lo, who_high=who_hi, guideline_low=g_lo, guideline_high=g_hi,
                       criteria=tuple(criteria), missing=missing, pf_ratio=None if pf is None else round(pf, 1))
