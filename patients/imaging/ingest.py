"""Ingest: one uploaded zone clip, validated, decoded, de-identified when the study asks, stored.

The one way a clip enters the platform, in two halves that every caller shares:

* :func:`~patients.imaging.accept.clip_accept` - the upload request's half: cheap checks, the
  upload streamed into storage, a ``pending`` clip, its check sent to the ``ingest`` queue. The
  exam page's upload form and both API upload endpoints answer with it (202 and the clip).
* :func:`~patients.imaging.process.clip_process` - the worker's half: decode within the budgets,
  de-identify, frame cache, ``ready`` (``clip_stored`` sent in that transaction) or ``failed``.

:func:`clip_ingest` runs both halves inline, through the same functions, for the callers that
want the finished clip at once: the dataset importers, the demo, benchmarks and tests.
"""
from __future__ import annotations

from typing import IO, Any

from django.db import transaction

from patients.imaging.accept import clip_accept, upload_remove
from patients.imaging.checks import IngestError, IngestResult
from patients.imaging.models import ZoneClip
from patients.imaging.process import clip_process
from patients.records.models import Exam

__all__ = ["IngestError", "IngestResult", "clip_accept", "clip_ingest", "clip_process"]


def clip_ingest(
    *,
    exam: Exam,
    upload: IO[bytes],
    zone: str,
    by: Any,
    filename: str = "",
    replace: bool = False,
) -> IngestResult:
    """Store one zone clip of an exam now: validate, decode, de-identify when the study asks, store.

    Studies with ``deidentify`` (the default) store a de-identified DICOM (PS3.15 basic profile,
    burned-in text outside the sector redacted, also in the decoded frames) and keep the
    untouched upload in ``source`` only when ``keep_original`` is set. Other studies keep the
    original byte for byte. Re-uploading the same bytes to the same zone of the same exam returns
    the existing clip (``created=False``). Any failure raises ``IngestError`` naming the problem
    (the words the worker would store on a failed clip) and leaves no row and no file behind.
    """
    accepted: ZoneClip | None = None
    try:
        with transaction.atomic():
            result = clip_accept(exam=exam, upload=upload, zone=zone, by=by, filename=filename, replace=replace,
                                 dispatch=False)
            if not result.created:
                return result
            accepted = result.clip
            processed = clip_process(clip_id=accepted.pk)
            if processed is None:  # pragma: no cover - the clip was claimed inside this transaction
                raise IngestError("the clip could not be checked; retry", code="conflict", status=409)
            if processed.error is not None:
                raise processed.error
            return IngestResult(processed.clip, True)
    except BaseException:
        if accepted is not None:
            upload_remove(accepted)  # the rolled-back row named it; its check removed what it wrote
        raise
