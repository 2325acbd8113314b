"""Units of the clinical records, as plain constants: pure code (pairing, dashboards' statistics)
uses them without importing the Django models."""
from __future__ import annotations

#: mmHg per kPa. Partial pressures are stored in mmHg with the unit that was entered.
KPA_TO_MMHG = 7.50062
