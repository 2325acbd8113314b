from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from scoring.core.labels import FINDINGS
from scoring.core.training.datasets import UNKNOWN, covid_blues_records, pocus_records


def test_covid_blues_index(shared_data: Path) -> None:
    recs = covid_blues_records(shared_data / "covid-blues")
    assert len(recs) == 235
    assert len({r.patient for r in recs}) == 42
    assert Counter(r.score for r in recs) == {0: 78, 1: 72, 2: 55, 3: 30}
    assert all(r.zone in {"L1", "L2", "L3", "R1", "R2", "R3"} for r in recs)
    f = np.stack([r.findings_vector() for r in recs])
    assert f.shape == (235, len(FINDINGS))
    # trailing spaces in the CSV ("yes ") are parsed
    assert set(np.unique(f[:, FINDINGS.index("b_lines")])) == {0, 1}
    pi = FINDINGS.index("pleural_irregularity")
    assert all(r.findings_vector()[pi] == 0 for r in recs if r.score == 0 and "intact" not in r.name)
    eff = FINDINGS.index("effusion")
    assert f[:, eff].sum() == 1  # "massive pleural effusion" in one comment


def test_pocus_index(shared_data: Path) -> None:
    recs = pocus_records(shared_data / "pocus", scored_only=True)
    assert len(recs) >= 70
    assert all(0 <= r.score <= 3 and r.patient.startswith("pocus_") for r in recs)
    f = np.stack([r.findings_vector() for r in recs])
    assert (f[:, FINDINGS.index("consolidation")] != UNKNOWN).mean() > 0.8
