"""Response headers that every page and API answer carries (issue 15, "Headers").

* ``Content-Security-Policy`` (``ContentSecurityPolicyMiddleware``): ``CONTENT_SECURITY_POLICY``
  with the site's own WebSocket origin added to ``connect-src``; ``CSP_REPORT_ONLY`` sends it as
  ``Content-Security-Policy-Report-Only`` (to try a change on a live site first). A view may widen
  its own answer's policy with :func:`csp_update` (the ReDoc page's styles).
* ``Cache-Control: no-store`` and ``Pragma: no-cache`` (``NoStoreMiddleware``) on every API answer
  and every page answered to a signed-in user: they identify patients and must not stay in a
  browser's or a proxy's cache. A view that chose its own ``Cache-Control`` keeps it (the decoded
  frames: ``private``, so only the signed-in user's own browser keeps them, for the cine player).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import wraps
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse

Policy = Mapping[str, Sequence[str]]
_EXTRA = "_lusweb_csp_extra"


def render_policy(policy: Policy, extra: Policy | None = None) -> str:
    """``directive source ...; ...`` with ``extra`` sources added to (or directives added after)
    ``policy``'s, in order, without repeats."""
    merged: dict[str, list[str]] = {name: list(sources) for name, sources in policy.items()}
    for name, sources in (extra or {}).items():
        merged.setdefault(name, [])
        merged[name] += [s for s in sources if s not in merged[name]]
    return "; ".join(" ".join([name, *sources]) for name, sources in merged.items())


def _websocket_origins(request: HttpRequest) -> list[str]:
    """The site's own ws:// and wss:// origin: the exam page's live progress (Channels)."""
    host = request.get_host()
    return [f"wss://{host}"] if request.is_secure() else [f"ws://{host}", f"wss://{host}"]


class ContentSecurityPolicyMiddleware:
    """Adds the site's ``Content-Security-Policy`` to every answer that has none."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        header = "Content-Security-Policy-Report-Only" if settings.CSP_REPORT_ONLY else "Content-Security-Policy"
        if "Content-Security-Policy" in response or "Content-Security-Policy-Report-Only" in response:
            return response
        extra: dict[str, list[str]] = {"connect-src": _websocket_origins(request)}
        for name, sources in getattr(response, _EXTRA, {}).items():
            extra[name] = [*extra.get(name, []), *sources]
        if settings.CSP_REPORT_URI:
            extra["report-uri"] = [settings.CSP_REPORT_URI]
        response[header] = render_policy(settings.CONTENT_SECURITY_POLICY, extra)
        return response


def csp_update(**sources: Sequence[str]) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Widen the policy of one view's answers: ``csp_update(style_src=["'unsafe-inline'"])``."""
    extra = {name.replace("_", "-"): list(values) for name, values in sources.items()}

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            response = view(request, *args, **kwargs)
            setattr(response, _EXTRA, extra)
            return response

        return wrapped

    return decorate


class NoStoreMiddleware:
    """``Cache-Control: no-store`` on API answers and on pages for signed-in users."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        user = getattr(request, "user", None)
        identifying = request.path.startswith("/api/") or bool(user is not None and user.is_authenticated)
        if identifying and "Cache-Control" not in response:
            response["Cache-Control"] = "no-store"
            response["Pragma"] = "no-cache"
        return response
