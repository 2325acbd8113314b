"""The export as HTTP: the CSV streamed in chunks (audited with the rows sent), and its dictionary."""
from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpResponse, StreamingHttpResponse
from django.utils.text import slugify

from patients.audit.models import AuditAction
from patients.audit.services import audit_finish_export, audit_record
from patients.research.export.columns import Column
from patients.research.export.columns import columns as _flat_columns
from patients.research.export.course import course_columns, course_rows
from patients.research.export.params import ExportParams
from patients.research.export.rows import batched
from patients.research.export.rows import export_rows as _flat_rows
from patients.studies.models import Study


def _zone_course(params: ExportParams) -> bool:
    """Zone level, wide: a row per patient x zone (``course``), not a row per exam."""
    return params.level == "zone" and params.wide


def columns(study: Study, params: ExportParams) -> list[Column]:
    """The export's columns, in order, for any level and format."""
    return course_columns(study, params) if _zone_course(params) else _flat_columns(study, params)


def export_rows(study: Study, params: ExportParams, *, batch: int = 500) -> Iterator[list[Any]]:
    """The export's data rows, for any level and format."""
    if _zone_course(params):
        return course_rows(study, params)
    return _flat_rows(study, params, batch=batch)


class _Echo:
    def write(self, value: str) -> str:
        return value


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return int(value)
    return value


def stream_csv(study: Study, params: ExportParams, *, on_finish: Callable[[int, bool], None] | None = None,
               batch: int = 500) -> Iterator[str]:
    """Header line, then the rows as CSV text in chunks of ``batch`` rows.

    ``on_finish(row_count, complete)`` runs once the stream ends or is closed early (a client
    that disconnects), so the audit trail records how many rows actually left.
    """
    writer = csv.writer(_Echo())
    count = 0
    complete = False
    try:
        yield writer.writerow([c.name for c in columns(study, params)])
        for chunk in batched(export_rows(study, params, batch=batch), batch):
            count += len(chunk)
            yield "".join(writer.writerow([_cell(v) for v in row]) for row in chunk)
        complete = True
    finally:
        if on_finish is not None:
            on_finish(count, complete)


def dictionary_csv(study: Study, params: ExportParams) -> str:
    """The data dictionary of an export: column, type, unit, meaning."""
    lines: list[str] = []
    writer = csv.writer(_Echo())
    lines.append(writer.writerow(["column", "type", "unit", "meaning"]))
    for c in columns(study, params):
        lines.append(writer.writerow([c.name, c.type, c.unit, c.meaning]))
    return "".join(lines)


def _filename(study: Study, params: ExportParams, suffix: str = "") -> str:
    return f"{slugify(study.name) or 'study'}-{params.level}-{params.format}{suffix}.csv"


async def _async_chunks(chunks: Iterator[str]) -> Any:
    """Feed a synchronous generator to an ASGI server one chunk at a time (Django would otherwise
    consume a sync iterator whole before sending it); every step runs in the same sync thread, so
    the database cursor and transaction state stay on one connection."""
    done = ""  # stream_csv never yields an empty chunk

    def step() -> str:
        return next(chunks, done)

    def close() -> None:
        getattr(chunks, "close", lambda: None)()

    try:
        while chunk := await sync_to_async(step, thread_sensitive=True)():
            yield chunk
    finally:
        await sync_to_async(close, thread_sensitive=True)()


def export_http_response(*, user: Any, study: Study, params: ExportParams, asgi: bool = False) -> StreamingHttpResponse:
    """The streamed CSV of an export; the export is audited with the rows actually sent."""
    event = audit_record(actor=user, action=AuditAction.EXPORT, study=study, object_type="export",
                         object_id=f"{params.level}/{params.format}", changes={
                             "level": params.level, "format": params.format, "model": params.model,
                             "window_hours": params.window_hours, "identifying": params.identifying,
                             "complete": False})

    def finish(rows: int, complete: bool) -> None:
        audit_finish_export(event=event, row_count=rows, complete=complete)

    chunks = stream_csv(study, params, on_finish=finish)
    response = StreamingHttpResponse(_async_chunks(chunks) if asgi else chunks, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{_filename(study, params)}"'
    response["Cache-Control"] = "no-store"
    return response


def dictionary_http_response(*, study: Study, params: ExportParams) -> HttpResponse:
    response = HttpResponse(dictionary_csv(study, params), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{_filename(study, params, "-dictionary")}"'
    return response
