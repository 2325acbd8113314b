"""Makes the client address of the current request available to the audit trail."""
from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from patients.audit.services import client_ip, request_ip


class AuditContextMiddleware:
    """Every :func:`~patients.audit.services.audit_record` of a request records its client address
    (add it to ``MIDDLEWARE`` after the authentication middleware; without it ``ip`` stays empty)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with request_ip(client_ip(request)):
            return self.get_response(request)
