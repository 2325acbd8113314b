"""Signals of scoring, for the layers above it.

``exam_scored(sender=ScoringJob, job=..., exam_id=...)``: a scoring job stored an exam's clip
scores, its exam score and the AI's readings (``scoring.pipeline``, inside the transaction that
writes them). The alerts connect to it in ``PatientsConfig.ready`` and check the exam's rules on
the score of record once the transaction commits.
"""
from __future__ import annotations

from django.dispatch import Signal

exam_scored = Signal()
