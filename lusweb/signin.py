"""Sign-in lockout (django-axes) answered clearly, for the login form, the admin and the token API.

django-axes counts failed sign-ins per client address and per username in the database (shared by
every server process) and refuses sign-ins for ``AXES_COOLOFF_TIME`` after ``AXES_FAILURE_LIMIT``
failures, the right password included. This module turns that refusal into one answer: 429 with
``Retry-After``, as a page in the site's layout or, for the API, as
``{"error": "too many failed sign-in attempts; try again in N minutes", "code": "locked_out"}``.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_cool_off, get_failure_limit
from django.db.models import Max, Sum
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.request import Request
from rest_framework.response import Response

from lusweb.throttling import SignInThrottle

CODE = "locked_out"


def seconds_left(request: Any, credentials: dict[str, Any] | None) -> int:
    """Seconds until the lockout of this client address or username ends: the cool-off from the
    latest failure of whichever of them reached the limit (the whole cool-off when unknown)."""
    cool_off = get_cool_off(request) or timedelta(0)
    limit = get_failure_limit(request, credentials)
    ends = []
    handler = AxesProxyHandler.get_implementation()
    for attempts in getattr(handler, "get_user_attempts", lambda *_: [])(request, credentials):
        summary = attempts.aggregate(failures=Sum("failures_since_start"), last=Max("attempt_time"))
        if summary["last"] is not None and (summary["failures"] or 0) >= limit:
            ends.append(summary["last"] + cool_off)
    if not ends:
        return max(1, math.ceil(cool_off.total_seconds()))
    return max(1, math.ceil((max(ends) - timezone.now()).total_seconds()))


def lockout_message(seconds: int) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return f"too many failed sign-in attempts; try again in {minutes} minute{'s' if minutes != 1 else ''}"


def lockout_body(seconds: int) -> dict[str, Any]:
    """The API's answer to a locked-out sign-in."""
    return {"error": lockout_message(seconds), "code": CODE, "retry_after": seconds}


def _wants_json(request: Any) -> bool:
    accept = request.META.get("HTTP_ACCEPT", "")
    return str(request.path).startswith("/api/") or ("application/json" in accept and "text/html" not in accept)


def lockout_response(request: Any, original_response: HttpResponse | None = None,
                     credentials: dict[str, Any] | None = None) -> HttpResponse:
    """The answer to a locked-out sign-in (django-axes' ``AXES_LOCKOUT_CALLABLE``)."""
    seconds = seconds_left(request, credentials)
    message = lockout_message(seconds)
    response: HttpResponse
    if _wants_json(request):
        response = JsonResponse(lockout_body(seconds), status=429)
    else:
        django_request = getattr(request, "_request", request)
        response = TemplateResponse(django_request, "registration/locked_out.html",
                                    {"message": message, "seconds": seconds}, status=429)
        response.render()
    response["Retry-After"] = str(seconds)
    return response


class LockoutMiddleware:
    """Replaces the answer to a sign-in that django-axes refused with :func:`lockout_response`.

    In place of ``axes.middleware.AxesMiddleware``, whose async path (taken under uvicorn) calls
    the lockout callable with its arguments shifted; this one is sync-only, so Django runs it in
    the request's thread under ASGI too."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if getattr(request, "axes_locked_out", False):
            return lockout_response(request, response, getattr(request, "axes_credentials", None))
        return response


class TokenView(ObtainAuthToken):
    """``POST /api/v1/auth/token/``: DRF's token view with the ``auth`` rate limit and the lockout.

    django-axes marks the DRF request it was given, which the middleware never sees, so the view
    answers the lockout itself."""

    throttle_classes = [SignInThrottle]

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        if not serializer.is_valid() and getattr(request, "axes_locked_out", False):
            seconds = seconds_left(request, getattr(request, "axes_credentials", None))
            return Response(lockout_body(seconds), status=429, headers={"Retry-After": str(seconds)})
        serializer.is_valid(raise_exception=True)  # validated once: this raises the cached errors
        token, _ = Token.objects.get_or_create(user=serializer.validated_data["user"])
        return Response({"token": token.key})
