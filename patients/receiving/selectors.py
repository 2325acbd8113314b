"""Reads of the DICOM receiver: which calling AE titles may send, and to which study."""
from __future__ import annotations

from patients.studies.models import Study


def _allow_lists() -> list[tuple[int, list[str]]]:
    """(study id, its allowed calling AE titles) of every study that receives (not archived)."""
    rows = Study.objects.filter(archived=False).values_list("pk", "dicom_calling_aets")
    return [(pk, [str(t).strip() for t in titles or []]) for pk, titles in rows]


def calling_aets_allowed() -> set[str]:
    """Every calling AE title some receiving study allows (read from the database each time)."""
    return {title for _pk, titles in _allow_lists() for title in titles if title}


def studies_for_calling_aet(calling_aet: str) -> list[Study]:
    """The receiving studies that allow ``calling_aet`` (one, as study settings enforce)."""
    title = calling_aet.strip()
    ids = [pk for pk, titles in _allow_lists() if title and title in titles]
    return list(Study.objects.filter(pk__in=ids).order_by("pk"))
