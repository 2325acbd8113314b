"""What the severity model predicts and how its probability is shown (no torch, no numpy).

The model predicts the *course class* of a patient's whole stay - the COVID-BLUES outcome rule of
:mod:`scoring.core.training.covid_blues` - and the pages show ``P(severe or critical course)``,
"the risk of a severe course". It is not the patient's state at the exam: that is "severity now"
(:mod:`patients.records.severity_now`), from the clinical record and the blood gas.
"""
from __future__ import annotations

SEVERITY_CLASSES: tuple[str, ...] = ("mild", "moderate", "severe", "critical")
SEVERE_FROM = 2  # classes >= severe count as "severe" for the binary read-out

#: What the risk is the probability of (the training label), in the words the pages show.
OUTCOME = ("a severe course: oxygen therapy, ICU admission or death on any day of the stay "
           "(the COVID-BLUES outcome the model was trained on, not the state at the exam)")

#: Displayed probabilities are clipped to this range. Why: a model fitted on 42 patients cannot
#: tell a course apart to better than about one in a hundred, and a rounded "0 %" or "100 %" reads
#: as a certainty no model here has (the raw network says 0.00001 where it is wrong a third of
#: the time). Stored values are not clipped; only what a person or a script is shown.
DISPLAY_RANGE = (0.01, 0.99)


def displayed_probability(p: float) -> float:
    """``p`` clipped to :data:`DISPLAY_RANGE`: never 0 or 1 on a page, in the API or an export."""
    lo, hi = DISPLAY_RANGE
    return min(hi, max(lo, float(p)))
