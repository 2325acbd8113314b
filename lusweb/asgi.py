"""ASGI entry point: HTTP through Django, WebSockets through Channels."""
from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any

from lusweb.handler import django_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lusweb.settings.local")
# Django must be set up before importing anything that touches models.
django_asgi_app = django_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from lusweb import health  # noqa: E402
from lusweb.admission import Admission, KeepAliveLimit  # noqa: E402
from lusweb.routing import websocket_urlpatterns  # noqa: E402
from lusweb.warmup import process_warm  # noqa: E402
from patients.imaging.tempfiles import tempfiles_clean  # noqa: E402

# Uploads a killed server process was receiving are left in the temporary folder: a starting
# server process removes the stale ones.
tempfiles_clean()
# Before the process listens: its first requests must not wait for the imports (lusweb.warmup).
process_warm()

router = ProtocolTypeRouter(
    {
        # Page reads take turns, a few at a time, and kept-alive connections are closed now and
        # then so that they spread evenly over the processes (lusweb.admission).
        "http": KeepAliveLimit(
            Admission(django_asgi_app, limit=settings.WEB_CONCURRENCY, wait=settings.WEB_QUEUE_SECONDS),
            requests=settings.WEB_KEEPALIVE_REQUESTS),
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)


async def application(scope: dict[str, Any], receive: Callable[[], Awaitable[Any]],
                      send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
    """The site; ``/healthz/`` is answered ahead of the middleware stack (``lusweb.health``)."""
    if scope["type"] == "http" and scope["path"] == health.PATH:
        await health.healthz_asgi(scope, receive, send)
        return
    await router(scope, receive, send)
