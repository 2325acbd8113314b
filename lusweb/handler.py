"""Django's ASGI handler with the whole request in one thread hop.

Django's own ``ASGIHandler`` builds an async middleware chain. Ours holds sync-only middleware
(WhiteNoise, the security headers, the audit context, the sign-in lockout), and Django adapts the
chain at each boundary between sync and async parts: a page read went from the event loop to a
thread, back to the loop, to the thread again for each ``process_view`` and for the view, and back,
at each hop waiting for the loop to get the interpreter lock from busy request threads. No view of
the site is async, so the chain is built sync, as under WSGI, and runs in one hop to the request's
thread. The rest of the handler (reading the body, noticing a client that went away, streaming
the answer) is Django's.
"""
from __future__ import annotations

import django
from asgiref.sync import sync_to_async
from django.core.handlers import base
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponseBase


class OneHopASGIHandler(ASGIHandler):
    """An ``ASGIHandler`` whose middleware chain and views run in the request's thread, in one hop."""

    def __init__(self) -> None:
        base.BaseHandler.__init__(self)  # not ASGIHandler's: that one builds the chain async
        self.load_middleware(is_async=False)

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        # thread_sensitive: the request's own thread (ASGIHandler gives each request a
        # ThreadSensitiveContext), where its database connection and the answer's closing live too.
        response: HttpResponseBase = await sync_to_async(self.get_response, thread_sensitive=True)(request)
        return response


def django_asgi_application() -> OneHopASGIHandler:
    """Django set up and its HTTP application (``django.core.asgi.get_asgi_application``'s twin)."""
    django.setup(set_prefix=False)
    return OneHopASGIHandler()
