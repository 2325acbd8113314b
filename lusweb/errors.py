"""Errors shared by every app: the one shape in which bad input is refused.

Services raise :class:`ServiceError` (or a subclass) with a machine code, a readable message and
the HTTP status to answer with; the API's exception handler (:mod:`lusweb.api`) and the pages
turn it into ``{"error": ..., "code": ...}`` or a form error. It lives in the project package so
that every capability can raise it without importing another one.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence


class ServiceError(ValueError):
    """Bad input: carries a machine code, a human message and the HTTP status to answer with."""

    status = 400

    def __init__(self, message: str, *, code: str = "invalid", status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        if status is not None:
            self.status = status


def check_settable(fields: Iterable[str], settable: Sequence[str]) -> None:
    """Refuse (code ``bad_field``) a change of any field outside ``settable``, naming them all."""
    unknown = set(fields) - set(settable)
    if unknown:
        raise ServiceError(f"cannot change {', '.join(sorted(unknown))}; settable: {', '.join(settable)}",
                           code="bad_field")
