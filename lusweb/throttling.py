"""API rate limits (DRF throttles) shared by every server process.

The counters live in the ``throttle`` cache: Redis when ``LUSWEB_REDIS_URL`` is set, so that N
uvicorn processes enforce one limit rather than N; a process-local cache otherwise (the demo's
single process). Rates come from ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` at each request
(DRF's own classes read them once at import), and clients are told apart by ``REMOTE_ADDR``
(``NUM_PROXIES = 0``: a forged ``X-Forwarded-For`` header changes nothing).
"""
from __future__ import annotations

import logging
from typing import Any

from django.core.cache import caches
from django.utils.connection import ConnectionProxy
from redis.exceptions import RedisError
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle, UserRateThrottle

logger = logging.getLogger(__name__)
throttle_cache: Any = ConnectionProxy(caches, "throttle")


class _SharedRate(SimpleRateThrottle):
    cache = throttle_cache

    def allow_request(self, request: Request, view: Any) -> bool:
        # Redis down must not turn every API call (an upload included) into a 500: the counts
        # pause and the request goes through; the sign-in lockout's counts are in the database.
        try:
            return bool(super().allow_request(request, view))
        except RedisError as exc:
            logger.warning("API rate limits paused: the throttle cache is unreachable (%s)", exc)
            return True

    def get_rate(self) -> str | None:
        rates: dict[str, Any] = api_settings.DEFAULT_THROTTLE_RATES
        rate = rates.get(str(self.scope))
        return str(rate) if rate else None


class AnonThrottle(_SharedRate, AnonRateThrottle):
    """Requests without a signed-in user, per client address (``anon`` rate)."""


class UserThrottle(_SharedRate, UserRateThrottle):
    """Requests of a signed-in user, per user (``user`` rate)."""


class SignInThrottle(_SharedRate):
    """Token requests (``POST /api/v1/auth/token/``), per client address, whoever asks (``auth``
    rate): password guessing meets this before the lockout's failure count."""

    scope = "auth"

    def get_cache_key(self, request: Request, view: Any) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
