"""Each rule fires with the right numbers on the score of record and not below its threshold; a
missing zone never fires one; evaluating twice raises each alert once."""
from __future__ import annotations

import pytest

from patients.alerts.evaluate import SOURCE_AI, SOURCE_CLINICIAN, SOURCE_GAS
from patients.alerts.models import Alert, AlertKind, AlertRule
from patients.alerts.rules import alert_rules_update, study_rules
from patients.alerts.services import alerts_evaluate_exam, alerts_evaluate_gas
from patients.audit.models import AuditAction, AuditEvent
from patients.readings.services import reading_create
from tests.factories import BloodGasFactory
from tests.patients.alerts.cohort import T0, cohort
from tests.patients.dashboards.builders import fake_clip

pytestmark = pytest.mark.django_db

EIGHT = ("R1", "R2", "R3", "R4", "L1", "L2", "L3", "L4")


def kinds(exam_id: int) -> list[tuple[str, str]]:
    return sorted(Alert.objects.filter(exam_id=exam_id).values_list("kind", "key"))


def test_default_rules_are_made_on_first_use_all_four_enabled() -> None:
    c = cohort()
    assert not AlertRule.objects.filter(study=c.study).exists()
    rules = study_rules(c.study)
    assert {k: (r.enabled, r.threshold, r.email) for k, r in rules.items()} == {
        "zone_worsened": (True, 2.0, True), "global_score": (True, 0.5, True), "pf_ratio": (True, 300.0, True),
        "new_consolidation": (True, None, True)}
    assert AlertRule.objects.filter(study=c.study).count() == 4
    study_rules(c.study)
    assert AlertRule.objects.filter(study=c.study).count() == 4


def test_a_zone_two_points_above_the_previous_record_fires_one_point_does_not() -> None:
    c = cohort()
    c.exam(day=0, read={"R1": 1, "R2": 1, "L1": 0})
    second = c.exam(day=2, read={"R1": 3, "R2": 2, "L1": 1})
    raised = [a for a in alerts_evaluate_exam(exam_id=second.pk) if a.kind == AlertKind.ZONE_WORSENED]
    assert [(a.kind, a.key) for a in raised] == [(AlertKind.ZONE_WORSENED, f"exam:{second.pk}:zone:R1")]
    alert = raised[0]
    assert alert.message == "Zone R1 rose from 1 to 3 (+2 points) since the previous exam"
    assert alert.source == SOURCE_CLINICIAN
    assert alert.details["score"] == 3 and alert.details["previous_score"] == 1 and alert.details["rise"] == 2
    assert alert.details["previous_exam"] == c.exams[0].pk and alert.patient == c.patient and alert.exam == second


def test_the_zone_threshold_is_the_study_s() -> None:
    c = cohort()
    alert_rules_update(study=c.study, by=c.admin, rules=[{"kind": "zone_worsened", "threshold": 3}])
    c.exam(day=0, read={"R1": 1, "R2": 0})
    second = c.exam(day=1, read={"R1": 3, "R2": 3})
    assert kinds(second.pk) == []
    raised = alerts_evaluate_exam(exam_id=second.pk)
    assert [a.details["zone"] for a in raised if a.kind == AlertKind.ZONE_WORSENED] == ["R2"]


def test_a_zone_missing_from_either_exam_never_fires() -> None:
    c = cohort()
    first = c.exam(day=0, read={"R1": 0}, ai={"R2": 0})
    fake_clip(first, "R3")  # a clip nobody read: not on record
    second = c.exam(day=1, read={"R2": 3, "R3": 3, "L4": 3}, ai={"R1": 1})
    # R2 went 0 (AI) -> 3 and fires; R3 (unread before) and L4 (no clip before) never do.
    raised = alerts_evaluate_exam(exam_id=second.pk)
    assert sorted((a.kind, a.details["zone"]) for a in raised) == [
        (AlertKind.NEW_CONSOLIDATION, "R2"), (AlertKind.ZONE_WORSENED, "R2")]
    # The first exam has no previous one: nothing compares, nothing fires.
    assert alerts_evaluate_exam(exam_id=first.pk, follow=False) == []


def test_zones_of_two_protocols_compare_where_the_probe_was() -> None:
    c = cohort()
    c.exam(day=0, read={"R3": 0}, protocol="blue-6")  # BLUE R3: the PLAPS point, right lateral lower
    second = c.exam(day=1, read={"R3": 2, "R4": 2})  # 8-zone R3 is right lateral upper, R4 lateral lower
    [alert] = alerts_evaluate_exam(exam_id=second.pk)
    assert (alert.kind, alert.details["zone"], alert.details["previous_zone"]) == (AlertKind.ZONE_WORSENED, "R4", "R3")


def test_the_source_says_when_the_ai_s_draft_was_used() -> None:
    c = cohort()
    c.exam(day=0, read={"L2": 0})
    second = c.exam(day=1, ai={"L2": 2})
    [alert] = alerts_evaluate_exam(exam_id=second.pk)
    assert alert.source == SOURCE_AI
    assert (alert.details["source_now"], alert.details["previous_source"]) == ("ai", "clinician")


def test_the_global_score_fires_above_half_the_protocol_s_maximum_with_every_zone() -> None:
    c = cohort()
    over = dict(zip(EIGHT, [2, 2, 2, 2, 2, 2, 1, 0], strict=True))  # LUSS 13 / 24 = 0.54
    at = dict(zip(EIGHT, [2, 2, 2, 2, 2, 2, 0, 0], strict=True))  # LUSS 12 / 24 = 0.50: not above
    exam_at = c.exam(day=0, read=at)
    assert alerts_evaluate_exam(exam_id=exam_at.pk) == []
    exam_over = c.exam(day=1, read=over)
    [alert] = [a for a in alerts_evaluate_exam(exam_id=exam_over.pk) if a.kind == AlertKind.GLOBAL_SCORE]
    assert alert.key == f"exam:{exam_over.pk}"
    assert alert.message == "LUSS 13/24 is 0.54 of the maximum, above 0.5"
    assert (alert.details["luss"], alert.details["max"], alert.details["fraction"]) == (13, 24, 0.5417)
    assert alert.source == SOURCE_CLINICIAN


def test_the_global_score_never_fires_without_every_zone_of_the_protocol() -> None:
    c = cohort()
    seven = dict.fromkeys(EIGHT[:7], 3)  # 21 of the 24 possible, but L4 was not scanned
    exam = c.exam(day=0, read=seven)
    assert [a for a in alerts_evaluate_exam(exam_id=exam.pk) if a.kind == AlertKind.GLOBAL_SCORE] == []
    alert_rules_update(study=c.study, by=c.admin, rules=[{"kind": "global_score", "threshold": 0.25}])
    assert [a for a in alerts_evaluate_exam(exam_id=exam.pk) if a.kind == AlertKind.GLOBAL_SCORE] == []


def test_a_new_consolidation_fires_from_the_finding_or_a_score_of_3() -> None:
    c = cohort()
    c.exam(day=0, read={"R1": 2, "R2": 1, "R3": 3, "R4": 1})
    second = c.exam(day=3, read={"R1": 2, "R2": 3, "R3": 3}, ai={"R4": 1}, ai_consolidation=("R4",),
                    findings={"R1": {"consolidation": True, "b_lines": True}})
    raised = {a.details["zone"]: a for a in alerts_evaluate_exam(exam_id=second.pk)
              if a.kind == AlertKind.NEW_CONSOLIDATION}
    assert sorted(raised) == ["R1", "R2", "R4"]  # R3 had it already
    assert raised["R1"].details["evidence"] == ["finding"] and raised["R1"].source == SOURCE_CLINICIAN
    assert raised["R2"].details["evidence"] == ["score 3"]
    assert raised["R4"].details["evidence"] == ["finding"] and raised["R4"].source == SOURCE_AI
    assert raised["R4"].message == "New consolidation in zone R4 (AI: finding), not at the previous exam"
    assert raised["R1"].message == "New consolidation in zone R1 (clinician: finding), not at the previous exam"


def test_p_f_below_300_fires_and_the_rule_may_be_set_to_200() -> None:
    c = cohort()
    low = BloodGasFactory(patient=c.patient, sampled_at=T0, pao2_mmhg=80.0, fio2=0.3)  # 266.7
    edge = BloodGasFactory(patient=c.patient, sampled_at=T0, pao2_mmhg=90.0, fio2=0.3)  # 300: not below
    [alert] = alerts_evaluate_gas(gas_id=low.pk)
    assert (alert.kind, alert.key, alert.blood_gas, alert.exam) == (AlertKind.PF_RATIO, f"gas:{low.pk}", low, None)
    assert alert.message == "P/F 267 mmHg, below 300" and alert.source == SOURCE_GAS
    assert alert.details["pf"] == 266.7
    assert alerts_evaluate_gas(gas_id=edge.pk) == []
    alert_rules_update(study=c.study, by=c.admin, rules=[{"kind": "pf_ratio", "threshold": 200}])
    moderate = BloodGasFactory(patient=c.patient, sampled_at=T0, pao2_mmhg=65.0, fio2=0.3)  # 216.7
    assert alerts_evaluate_gas(gas_id=moderate.pk) == []
    severe = BloodGasFactory(patient=c.patient, sampled_at=T0, pao2_mmhg=55.0, fio2=0.3)  # 183.3
    assert [a.message for a in alerts_evaluate_gas(gas_id=severe.pk)] == ["P/F 183 mmHg, below 200"]
    no_fio2 = BloodGasFactory(patient=c.patient, sampled_at=T0, pao2_mmhg=40.0, fio2=None)
    assert alerts_evaluate_gas(gas_id=no_fio2.pk) == []


def test_a_disabled_rule_never_fires() -> None:
    c = cohort()
    alert_rules_update(study=c.study, by=c.admin, rules=[{"kind": "zone_worsened", "enabled": False},
                                                         {"kind": "pf_ratio", "enabled": False}])
    c.exam(day=0, read={"R1": 0})
    second = c.exam(day=1, read={"R1": 2})
    assert alerts_evaluate_exam(exam_id=second.pk) == []
    assert alerts_evaluate_gas(gas_id=BloodGasFactory(patient=c.patient, pao2_mmhg=50.0, fio2=0.5).pk) == []


def test_evaluating_twice_raises_each_alert_once_audited_by_the_system() -> None:
    c = cohort()
    c.exam(day=0, read={"R1": 0, "R2": 0})
    second = c.exam(day=1, read={"R1": 2, "R2": 3})
    first_run = alerts_evaluate_exam(exam_id=second.pk)
    assert len(first_run) == 3  # R1 and R2 worsened, R2 a new consolidation (score 3)
    assert alerts_evaluate_exam(exam_id=second.pk) == []
    assert Alert.objects.filter(study=c.study).count() == 3
    events = AuditEvent.objects.filter(object_type="alert", action=AuditAction.CREATE)
    assert events.count() == 3
    assert {(e.actor, e.changes["by"]) for e in events} == {(None, "system")}
    assert {e.object_id for e in events} == {str(a.pk) for a in first_run}


def test_a_changed_reading_re_evaluates_the_next_exam_too() -> None:
    c = cohort()
    first = c.exam(day=0, read={"R1": 1})
    second = c.exam(day=1, read={"R1": 2})
    assert alerts_evaluate_exam(exam_id=second.pk) == []  # +1 only
    reading_create(clip=first.clips.get(zone="R1"), by=c.clinician, score=0)  # the first exam re-read: 0
    raised = alerts_evaluate_exam(exam_id=first.pk)  # what the reading's hook does
    assert [(a.exam_id, a.kind, a.details["rise"]) for a in raised] == [(second.pk, AlertKind.ZONE_WORSENED, 2)]
