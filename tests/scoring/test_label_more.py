"""The worklist's label-more order on constructed clip scores of known probabilities, domain
distances and stored features: the order, its numbers, the novelty basis and the exams it cannot
rank."""
from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import pytest

from patients.readings.services import blind_read_start, exam_sign, reading_create
from patients.readings.worklist import worklist, worklist_reordered
from patients.studies.models import Role
from scoring.core.inference.informative import READOUT
from scoring.label_more import LABEL_MORE
from scoring.severity import pack_features
from tests.factories import ClipScoreFactory, ExamFactory, PatientFactory, StudyFactory, members_by_role
from tests.patients.dashboards.builders import fake_clip

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 3, 1, 8, tzinfo=dt.UTC)
THRESHOLD = 2.0  # the domain check's threshold in these clips: beyond it, "unlike the training clips"


def _exam(patient: Any, day: int, zones: dict[str, tuple[list[float], float | None, Any]]) -> Any:
    """An exam whose zones have clip scores of (probs, domain distance, stored feature sets)."""
    exam = ExamFactory(patient=patient, acquired_at=T0 + dt.timedelta(days=day))
    for zone, (probs, distance, sets) in zones.items():
        extra: dict[str, Any] = {}
        if distance is not None:
            extra["domain"] = {"distance": distance, "threshold": THRESHOLD, "in_domain": distance <= THRESHOLD}
        if sets is not None:
            extra["severity_features"] = pack_features(np.asarray(sets))
        ClipScoreFactory(clip=fake_clip(exam, zone), probs=probs, extra=extra)
    return exam


def _read_and_sign(exam: Any, user: Any, *, sign: bool = True) -> None:
    for clip in exam.clips.all():
        reading_create(clip=clip, by=user, score=1)
    if sign:
        exam_sign(exam=exam, by=user)


def _sets(*values: float, head: float = 0.0) -> list[list[float]]:
    """Feature sets of one pooled feature: one set per value, behind a read-out of ``head``s."""
    return [[head] * READOUT + [v] for v in values]


def test_most_informative_first_on_domain_distance() -> None:
    """Six unread zones in three exams, no stored features: novelty is the domain distance.

    Entropy ranks (by hand: 0.121, 0.424, 0.5, 0.678, 0.880, 1.0) and distance ranks, in sixths:
    X.R1 3 and 1, X.R2 1 and 2, Y.R1 5 and 5, Y.R2 4 and 4, Z.R1 6 and 3, Z.R2 2 and 6; means
    X.R1 4/12, Y.R1 10/12, Z.R1 9/12 lead their exams: Y, Z, X. The entropy alone (Z.R1 = 1.0)
    and the distance alone (Z.R2 = 4.0) would put Z first; the urgent order (Z has two unsure
    zones, Y one, X none) is Z, Y, X."""
    study = StudyFactory(protocol="12-zone")
    users = members_by_role(study, "lm-{role}")
    clinician = users[Role.CLINICIAN]
    px, py, pz, pw = (PatientFactory(study=study, code=c) for c in ("LM-X", "LM-Y", "LM-Z", "LM-W"))
    x = _exam(px, 3, {"R1": ([0.5, 0.5, 0, 0], 0.3, None), "R2": ([0.97, 0.01, 0.01, 0.01], 0.6, None)})
    y = _exam(py, 2, {"R1": ([0.5, 0.2, 0.2, 0.1], 2.5, None), "R2": ([0.7, 0.1, 0.1, 0.1], 1.5, None)})
    z = _exam(pz, 1, {"R1": ([0.25] * 4, 0.9, None), "R2": ([0.85, 0.05, 0.05, 0.05], 4.0, None)})
    read = _exam(pw, 0, {"R1": ([0.25] * 4, 9.0, None)})
    _read_and_sign(read, clinician, sign=False)  # read, not signed: waits, nothing left to label
    signed = _exam(pw, 5, {"R1": ([0.25] * 4, 9.0, None)})
    _read_and_sign(signed, clinician)  # signed: not listed at all
    # Urgent: Z two unsure zones; the read exam's AI was unsure too (uniform, far), and older than Y.
    assert [i.exam_id for i in worklist(study=study)] == [z.pk, read.pk, y.pk, x.pk]

    ordered = worklist_reordered(study=study, user=clinician, order=LABEL_MORE)
    assert [r.item.exam_id for r in ordered.items] == [y.pk, z.pk, x.pk, read.pk]
    assert [r.value for r in ordered.items] == [pytest.approx(10 / 12, abs=1e-4), pytest.approx(9 / 12, abs=1e-4),
                                                pytest.approx(4 / 12, abs=1e-4), None]
    assert ordered.meta == {"novelty_basis": "domain", "candidates": 6, "labelled_clips": 0}
    assert "out-of-domain distance" in ordered.note and "the unread clips have no stored image features" in ordered.note
    top = ordered.items[0]
    assert [zn["zone"] for zn in top.zones] == ["R1", "R2"]  # best first
    spread = -(0.5 * math.log(0.5) + 2 * 0.2 * math.log(0.2) + 0.1 * math.log(0.1)) / math.log(4)
    r1 = top.zones[0]
    assert (r1["uncertainty"], r1["uncertainty_rank"], r1["novelty"], r1["novelty_rank"]) == (
        pytest.approx(spread, abs=1e-4), pytest.approx(5 / 6, abs=1e-4), 2.5, pytest.approx(5 / 6, abs=1e-4))
    assert r1["text"] == ("R1 0.83 = mean of uncertainty rank 0.83 (entropy 0.88) and novelty rank 0.83 (distance 2.50"
                          " to the training clips, 1 = typical)")
    assert top.why == "Most informative unread zone R1: informativeness 0.83."
    assert ordered.items[2].zones[0]["uncertainty"] == pytest.approx(0.5)  # X.R1: a two-way doubt, entropy 0.5
    assert "every zone has a clinician reading" in ordered.items[3].why and ordered.items[3].zones == []


def test_novelty_from_the_labelled_clips_features() -> None:
    """Stored features: novelty is the distance to the nearest labelled clip of the study.

    Descriptors (the read-out dropped, sets averaged): labelled 0 and 0, candidates A 1 (sets 0.5
    and 1.5), B 3, C 0.5; over the five: mean 0.9, SD sqrt(1.24), so A 0.898, B 2.694, C 0.449.
    Entropy ranks B 1/3, C 2/3, A 1; novelty ranks C 1/3, A 2/3, B 1: A 5/6, B 2/3, C 1/2. The
    domain distances alone would put C first (its 5.0), and a labelled clip of another study
    at 3 - B's twin - does not count."""
    study = StudyFactory(protocol="12-zone")
    clinician = members_by_role(study, "lf-{role}")[Role.CLINICIAN]
    patient = PatientFactory(study=study, code="LF-1")
    labelled = _exam(patient, 0, {"R1": ([0.25] * 4, 0.1, _sets(0.0)), "R2": ([0.25] * 4, 0.1, _sets(0.0, 0.0))})
    _read_and_sign(labelled, clinician)
    # The read-out (head) differs wildly between clips: it must not count.
    a = _exam(patient, 1, {"R1": ([0.25] * 4, 0.1, _sets(0.5, 1.5, head=50.0))})
    b = _exam(PatientFactory(study=study), 2, {"R1": ([0.97, 0.01, 0.01, 0.01], 0.2, _sets(3.0, head=-20.0))})
    c = _exam(PatientFactory(study=study), 3, {"R1": ([0.7, 0.1, 0.1, 0.1], 5.0, _sets(0.5, head=7.0))})
    other = StudyFactory()
    elsewhere = _exam(PatientFactory(study=other), 0, {"R1": ([0.25] * 4, 0.1, _sets(3.0))})
    _read_and_sign(elsewhere, members_by_role(other, "lo-{role}")[Role.CLINICIAN])

    ordered = worklist_reordered(study=study, user=clinician, order=LABEL_MORE)
    assert [r.item.exam_id for r in ordered.items] == [a.pk, b.pk, c.pk]
    assert ordered.meta == {"novelty_basis": "labelled", "candidates": 3, "labelled_clips": 2}
    sd = math.sqrt(1.24)
    assert [r.zones[0]["novelty"] for r in ordered.items] == [
        pytest.approx(1 / sd, abs=1e-4), pytest.approx(3 / sd, abs=1e-4), pytest.approx(0.5 / sd, abs=1e-4)]
    assert [r.value for r in ordered.items] == [pytest.approx(5 / 6, abs=1e-4), pytest.approx(2 / 3, abs=1e-4),
                                                pytest.approx(1 / 2, abs=1e-4)]
    assert "SD from the nearest labelled clip" in ordered.items[0].zones[0]["text"]
    assert "nearest of the 2 labelled clips of this study" in ordered.note


def test_blind_reads_and_unscored_zones_are_not_ranked() -> None:
    """The AI is hidden from a blind reader, so their blind exam is not ranked (for them only); a zone
    without an AI score is no candidate. Both follow the ranked exams, in the urgent order."""
    study = StudyFactory(protocol="12-zone")
    users = members_by_role(study, "lb-{role}")
    clinician = users[Role.CLINICIAN]
    patient = PatientFactory(study=study, code="LB-1")
    scored = _exam(patient, 2, {"R1": ([0.4, 0.3, 0.2, 0.1], 1.0, None)})
    blind = _exam(PatientFactory(study=study), 1, {"R1": ([0.25] * 4, 3.0, None)})
    unscored = ExamFactory(patient=patient, acquired_at=T0)
    fake_clip(unscored, "R1")
    blind_read_start(exam=blind, by=clinician)
    mine = worklist_reordered(study=study, user=clinician, order=LABEL_MORE)
    assert [r.item.exam_id for r in mine.items] == [scored.pk, unscored.pk, blind.pk]
    assert [r.value for r in mine.items] == [1.0, None, None]
    assert "no AI score yet" in mine.items[1].why and "blind read" in mine.items[2].why
    others = worklist_reordered(study=study, user=users[Role.STUDY_ADMIN], order=LABEL_MORE)
    assert [r.item.exam_id for r in others.items] == [blind.pk, scored.pk, unscored.pk]  # uniform, farther: 1.0
    assert [r.value for r in others.items] == [1.0, 0.5, None]
