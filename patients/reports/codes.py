"""The codes of the exam report's DICOM SR and FHIR resources, in one place.

No standard terminology has a concept for the lung ultrasound score, so its concepts are in a
private coding scheme, ``99LUSWEB`` (DICOM PS3.3 8.2: a private scheme starts with "99"); FHIR
names the same scheme with the system :data:`FHIR_SYSTEM`:

========== ============================================ ===========================================
code       meaning                                      used as
========== ============================================ ===========================================
LUSEXAM    Lung ultrasound examination                  SR procedure reported; FHIR report code
LUSZ       Lung ultrasound zone score                   a zone's score (0-3, Soldati), per zone
LUSS       Lung ultrasound score                        the sum of the zones' record scores
LUSMEAN    Mean lung ultrasound zone score              the mean of the zones' record scores
CLINREAD   Clinician reading                            method: the score of record is a clinician's
ADJREAD    Adjudicated reading                          method: ... an adjudication
AIREAD     AI reading, not reviewed                     method: ... still the AI's draft
<p>:<z>    e.g. ``12-zone:R1`` "Right anterior upper"   finding site / body site: the protocol's zone
========== ============================================ ===========================================

Standard codes beside them: SNOMED CT (``SCT``) 39607008 Lung, 24028007 Right, 7771000 Left,
51440002 Right and left, 255549009 Anterior, 49370004 Lateral, 255551008 Posterior (the zone's
region as topographical modifier), 32485007 Hospital admission (time point event, day 0 =
admission) and DCM 121079 Baseline (day 0 = the first exam); UCUM ``{score}`` (an arbitrary score
unit) and ``d`` (days); LOINC 18748-4 "Diagnostic imaging study" and HL7 v2-0074 ``US`` for the FHIR
DiagnosticReport's code and category.
"""
from __future__ import annotations

from typing import NamedTuple

from patients.studies.protocols import Protocol, Zone


class Code(NamedTuple):
    """A coded concept (the fields of ``pydicom.sr.coding.Code``; plain, so that loading the codes
    loads no pydicom)."""

    value: str
    scheme_designator: str
    meaning: str

SCHEME = "99LUSWEB"
FHIR_SYSTEM = "urn:lusweb:codes:99LUSWEB"
SNOMED_SYSTEM = "http://snomed.info/sct"
UCUM_SYSTEM = "http://unitsofmeasure.org"
LOINC_SYSTEM = "http://loinc.org"

EXAM = Code("LUSEXAM", SCHEME, "Lung ultrasound examination")
ZONE_SCORE = Code("LUSZ", SCHEME, "Lung ultrasound zone score")
LUSS = Code("LUSS", SCHEME, "Lung ultrasound score")
MEAN = Code("LUSMEAN", SCHEME, "Mean lung ultrasound zone score")
METHODS = {
    "clinician": Code("CLINREAD", SCHEME, "Clinician reading"),
    "adjudication": Code("ADJREAD", SCHEME, "Adjudicated reading"),
    "ai": Code("AIREAD", SCHEME, "AI reading, not reviewed"),
}

LUNG = Code("39607008", "SCT", "Lung")
LATERALITY = {"right": Code("24028007", "SCT", "Right"), "left": Code("7771000", "SCT", "Left")}
BOTH_SIDES = Code("51440002", "SCT", "Right and left")
REGION = {"anterior": Code("255549009", "SCT", "Anterior"), "lateral": Code("49370004", "SCT", "Lateral"),
          "posterior": Code("255551008", "SCT", "Posterior")}
ADMISSION = Code("32485007", "SCT", "Hospital admission")
BASELINE = Code("121079", "DCM", "Baseline")

SCORE_UNIT = Code("{score}", "UCUM", "score")
DAYS = Code("d", "UCUM", "day")

REPORT_LOINC = ("18748-4", "Diagnostic imaging study")


def zone_code(protocol: Protocol, zone: Zone) -> Code:
    """The zone as a code of the private scheme: ``<protocol>:<zone>`` (zone codes repeat across
    protocols), meaning its label."""
    return Code(protocol.column(zone.code), SCHEME, zone.label)
