"""The FHIR report: a Bundle that fhir.resources (R4B, the R4-compatible models) accepts, with the
database's values."""
from __future__ import annotations

import json
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.observation import Observation

from patients.imaging.core import deid
from patients.reports import fhir
from patients.reports.content import exam_report
from patients.studies.models import Role
from tests.patients.reports.conftest import CODES, Case, output_dir, sign_all


def _bundle(case: Case, role: str) -> dict[str, Any]:
    data = fhir.exam_fhir(exam_report(exam=case.exam, user=case.users[role]))
    (output_dir("exam-report") / f"report-{role}.fhir.json").write_bytes(data)
    return json.loads(data)


def _parts(bundle: dict[str, Any]) -> tuple[DiagnosticReport, dict[str, Observation], Observation]:
    Bundle.model_validate(bundle)  # the whole bundle is valid R4B
    entries = bundle["entry"]
    report = DiagnosticReport.model_validate(entries[0]["resource"])
    zones, total = {}, None
    for entry in entries[1:]:
        obs = Observation.model_validate(entry["resource"])
        code = obs.code.coding[0].code
        if code == "LUSZ":
            zones[obs.bodySite.coding[0].code.split(":")[1]] = obs
        else:
            assert code == "LUSS"
            total = obs
    assert total is not None
    assert [r.reference for r in report.result] == [e["fullUrl"] for e in entries[1:]]
    return report, zones, total


def test_bundle_holds_the_record(case: Case) -> None:
    bundle = _bundle(case, Role.CLINICIAN)
    assert bundle["type"] == "collection"
    report, zones, total = _parts(bundle)
    assert report.status == "preliminary" and report.code.coding[0].code == "18748-4"
    assert report.subject.identifier.value == "H7654321" and report.subject.display == "Ana Lima Ferreira"
    assert report.effectiveDateTime.isoformat().startswith("2026-03-04T12:00")
    assert set(zones) == set(CODES)
    for zone, obs in zones.items():
        assert obs.valueQuantity.value == case.record[zone] and obs.valueQuantity.code == "{score}"
        assert obs.status == "preliminary"
        method = obs.method.coding[0].code
        if case.source[zone] == "ai":
            assert method == "AIREAD" and "AI, not reviewed" in obs.method.text
            assert obs.device.display == "LUSWeb AI model lus-test-7"
        else:
            assert method == "CLINREAD" and obs.performer[0].display == "clinician-rep"
    assert total.valueQuantity.value == sum(case.record.values())
    assert len(total.derivedFrom) == 12
    assert "L4, L5, L6" in report.conclusion and "lus-test-7" in report.conclusion
    assert not getattr(report, "resultsInterpreter", None)


def test_signed_bundle_is_final_with_the_interpreter(case: Case) -> None:
    sign_all(case)
    report, zones, total = _parts(_bundle(case, Role.CLINICIAN))
    assert report.status == "final" and total.status == "final"
    assert {o.status for o in zones.values()} == {"final"}
    assert report.resultsInterpreter[0].display == "clinician-rep" == report.performer[0].display
    assert {o.method.coding[0].code for o in zones.values()} == {"CLINREAD"}


def test_researcher_bundle_is_pseudonymous_and_dateless(case: Case) -> None:
    bundle = _bundle(case, Role.RESEARCHER)
    report, zones, total = _parts(bundle)
    assert report.subject.identifier.value == deid.pseudonym(case.study.secret, case.patient.pk)
    assert report.subject.display == "patient W9-017"
    text = json.dumps(bundle)
    for secret in ("Ana Lima", "H7654321", "2026-03-04", "effectiveDateTime"):
        assert secret not in text, secret
    assert "day 3.5" in report.conclusion
    assert total.valueQuantity.value == sum(case.record.values())


def test_an_invalid_resource_is_refused(case: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    """The validation is real: a quantity that is not a decimal fails the export (R4B checks
    elements and types; it binds no value set, so a wrong status code would pass)."""
    monkeypatch.setattr(fhir, "_score", lambda value: {"value": "three", "unit": "score"})
    with pytest.raises(ValueError):
        fhir.exam_fhir(exam_report(exam=case.exam, user=case.users[Role.CLINICIAN]))


def test_amended_exam_is_preliminary_again(case: Case) -> None:
    from patients.readings import services as readings_services

    sign_all(case)
    clip = case.exam.clips.get(zone="R1")
    readings_services.reading_create(clip=clip, by=case.users[Role.STUDY_ADMIN], score=2)
    report, zones, total = _parts(_bundle(case, Role.CLINICIAN))
    assert report.status == "preliminary"
    assert zones["R1"].valueQuantity.value == 2 and zones["R1"].performer[0].display == "study_admin-rep"
    assert total.valueQuantity.value == sum(case.record.values()) - case.record["R1"] + 2
