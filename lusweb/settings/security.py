"""Readers for the sign-in lockout, API throttle and header settings (issue 15).

Each raises ``ImproperlyConfigured`` naming the variable, as ``lusweb.settings.env`` does.
"""
from __future__ import annotations

import re

from django.core.exceptions import ImproperlyConfigured

from lusweb.settings.env import PREFIX, env_list, env_str

#: ``LUSWEB_LOGIN_LOCKOUT_BY`` words and django-axes' lockout parameters.
LOCKOUT_WORDS = {"ip": "ip_address", "username": "username"}
#: Production's API rates; the throttling tests run with exactly these.
API_RATES = {"anon": "120/min", "user": "1200/min", "auth": "20/min"}
_RATE = re.compile(r"^[1-9]\d*/(s|sec|second|m|min|minute|h|hour|d|day)$")


def lockout_parameters(default: list[str]) -> list[str | list[str]]:
    """django-axes' ``AXES_LOCKOUT_PARAMETERS`` from ``LUSWEB_LOGIN_LOCKOUT_BY``: a comma-separated
    list of ``ip``, ``username`` or ``ip+username``; each item is counted (and locks) on its own."""
    words = env_list("LOGIN_LOCKOUT_BY", default)
    if not words:
        raise ImproperlyConfigured(f"{PREFIX}LOGIN_LOCKOUT_BY is empty: name ip, username or ip+username")
    parameters: list[str | list[str]] = []
    for word in words:
        parts = word.split("+")
        unknown = [p for p in parts if p not in LOCKOUT_WORDS]
        if unknown:
            raise ImproperlyConfigured(
                f"{PREFIX}LOGIN_LOCKOUT_BY={','.join(words)!r}: {unknown[0]!r} is not one of ip, username, ip+username"
            )
        mapped = [LOCKOUT_WORDS[p] for p in parts]
        parameters.append(mapped[0] if len(mapped) == 1 else mapped)
    return parameters


def throttle_rate(name: str, default: str) -> str:
    """A DRF rate such as ``120/min`` from ``LUSWEB_<name>``."""
    value = (env_str(name, default) or "").strip()
    if not _RATE.match(value):
        raise ImproperlyConfigured(
            f"{PREFIX}{name}={value!r} is not a rate such as 120/min (a count, /s, /min, /h or /day)"
        )
    return value
