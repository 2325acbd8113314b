"""Fixtures of the sign-in and throttling tests."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.test.utils import override_settings

from lusweb.settings.security import API_RATES


def clear_throttles() -> None:
    """Forget every throttle count (only those: the Redis database also holds Celery's and
    Channels' keys)."""
    cache = caches["throttle"]
    if isinstance(cache, RedisCache):
        client = cache._cache.get_client(write=True)
        keys = list(client.scan_iter(match=cache.make_key("throttle_*")))
        if keys:
            client.delete(*keys)
    else:
        cache.clear()


@pytest.fixture
def real_rates() -> Iterator[None]:
    """Production's API rates (the test settings raise them for the rest of the suite), from zero."""
    clear_throttles()
    with override_settings(REST_FRAMEWORK={**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": API_RATES}):
        yield
    clear_throttles()
