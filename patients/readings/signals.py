"""Signals of readings, for the layers above it.

``reading_saved(sender=ZoneReading, reading=..., exam_id=...)``: a clinician reading or an
adjudication was saved (sent inside the service's transaction). Scoring connects to it in
``ScoringConfig.ready`` to refresh the exam's severity from the score of record once the
transaction commits.

``exam_signed(sender=ExamSignature, signature=..., exam_id=...)``: a clinician signed an exam off
(``services.exam_sign``, inside its transaction). The alerts connect to it in
``PatientsConfig.ready`` and check the exam's rules once the transaction commits.
"""
from __future__ import annotations

from django.dispatch import Signal

reading_saved = Signal()
exam_signed = Signal()
