"""API-wide helpers: one error shape for every failure."""
from __future__ import annotations

from typing import Any

from rest_framework.exceptions import Throttled
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from lusweb.errors import ServiceError


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus an ``error`` string so clients always have one readable message."""
    if isinstance(exc, ServiceError):
        return Response({"error": exc.message, "code": exc.code}, status=exc.status)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, Throttled):  # DRF has set Retry-After; say the same in words
        wait = max(1, int(getattr(exc, "wait", None) or 1))
        response.data = {"error": f"too many requests; try again in {wait} second{'s' if wait != 1 else ''}",
                         "code": "throttled", "retry_after": wait}
        return response
    data = response.data
    if isinstance(data, dict) and "error" not in data:
        if "detail" in data and len(data) == 1:
            message = str(data["detail"])
        else:
            message = "; ".join(f"{field}: {_flatten(value)}" for field, value in data.items())
        response.data = {"error": message, **data}
    elif isinstance(data, list):
        response.data = {"error": _flatten(data), "detail": data}
    return response


def _flatten(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(_flatten(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_flatten(v)}" for k, v in value.items())
    return str(value)
