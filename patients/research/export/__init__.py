"""Cohort export: CSV rows streamed in constant memory, with a data dictionary.

Levels and formats (``?level=...&format=...``):

* ``zone`` + ``long``: one row per recorded zone (a clip) of every exam: patient x exam x zone.
* ``exam`` + ``long``: one row per exam.
* ``exam`` + ``wide``: one row per exam with a ``zone_<P>:<Z>_score``, ``zone_<P>:<Z>_override``
  and ``record_<P>:<Z>`` column per zone, named with its protocol (``zone_blue-6:R3_score``: a
  BLUE-6 R3 is not a 12-zone R3), the study protocol's zones first, then those of other protocols
  used by its exams; an exam fills only its own protocol's columns.
* ``zone`` + ``wide``: one row per patient x zone (the zone's course, see ``course``) with an
  ``exam<n>_day``, ``exam<n>_record`` and ``exam<n>_source`` column per exam of the patient.
* ``patient`` + ``long``: one row per patient (course summary).

Scores are those of one model version per exam: ``?model=<version>`` when given, else the
newest result of the active model, else the newest result of any model (as on the exam page).
Blood gases are paired with each exam by ``patients.records.pairing.pair_nearest`` (nearest gas of the
patient within ``?window_hours=``, default 12). The clinical record is the latest one recorded at
or before the exam.

Privacy: patients appear under their study pseudonym (HMAC-SHA256 of the patient id with the
study secret, see :func:`patients.imaging.core.deid.pseudonym`), never name or hospital number. Time is "days
since admission" (or since the patient's first exam when the admission date is unknown). Only
users who may see identifying data (clinicians, study admins) also get ``patient_code``,
``admission_date`` and ``acquired_at``; researchers never receive a calendar date.

Memory: exams (or patients) are read with ``QuerySet.iterator(chunk_size=batch)`` and processed
batch by batch with a fixed number of queries per batch, so the whole cohort is never in memory.
"""
