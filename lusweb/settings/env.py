"""Typed readers for ``LUSWEB_*`` environment variables.

Every reader raises ``ImproperlyConfigured`` naming the variable when its value is malformed,
so a typo in a deployment fails at start-up instead of silently using a default.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

PREFIX = "LUSWEB_"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _raw(name: str) -> str | None:
    return os.environ.get(PREFIX + name)


def env_str(name: str, default: str | None = None) -> str | None:
    value = _raw(name)
    return default if value is None else value


def env_bool(name: str, default: bool) -> bool:
    value = _raw(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{PREFIX}{name}={value!r} is not a boolean (use 1/0, true/false)")


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    value = _raw(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{PREFIX}{name}={value!r} is not an integer") from exc
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{PREFIX}{name}={number} must be >= {minimum}")
    if maximum is not None and number > maximum:
        raise ImproperlyConfigured(f"{PREFIX}{name}={number} must be <= {maximum}")
    return number


def env_list(name: str, default: list[str]) -> list[str]:
    value = _raw(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = _raw(name)
    if value is None:
        return default
    if value not in choices:
        raise ImproperlyConfigured(f"{PREFIX}{name}={value!r} must be one of {', '.join(choices)}")
    return value


def env_ae_title(name: str, default: str) -> str:
    """A DICOM Application Entity title: 1 to 16 characters, no backslash or control character."""
    value = _raw(name)
    if value is None:
        return default
    title = value.strip()
    if not 1 <= len(title) <= 16 or "\\" in title or any(ord(c) < 32 or ord(c) > 126 for c in title):
        raise ImproperlyConfigured(f"{PREFIX}{name}={value!r} is not an AE title (1-16 printable ASCII characters, "
                                   "no backslash)")
    return title


def parse_database_url(url: str, *, base_dir: Path) -> dict[str, Any]:
    """Turn ``sqlite:///path`` or ``postgres://user:pass@host:port/name`` into a DATABASES entry."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        # sqlite:///relative.db is relative to the project, sqlite:////abs/path.db is absolute
        path = unquote(parts.path[1:] if parts.path.startswith("/") else parts.path)
        if not path:
            raise ImproperlyConfigured(f"{PREFIX}DATABASE_URL={url!r} names no SQLite file")
        file = Path(path) if Path(path).is_absolute() else base_dir / path
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": str(file)}
    if scheme in {"postgres", "postgresql", "pgsql"}:
        name = unquote(parts.path.lstrip("/"))
        if not name:
            raise ImproperlyConfigured(f"{PREFIX}DATABASE_URL={url!r} names no database")
        try:
            port = parts.port
        except ValueError as exc:
            raise ImproperlyConfigured(f"{PREFIX}DATABASE_URL={url!r} has a bad port") from exc
        options = dict(parse_qsl(parts.query))
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(port or ""),
            "OPTIONS": options,
            # One connection per request; lusweb.settings.database adds the pool or a lifetime.
            "CONN_MAX_AGE": 0,
            "CONN_HEALTH_CHECKS": True,
        }
    raise ImproperlyConfigured(
        f"{PREFIX}DATABASE_URL={url!r}: unsupported scheme {scheme!r} (use sqlite:// or postgres://)"
    )


def env_site_url(name: str) -> str:
    """An absolute http(s) base URL without a trailing slash (links in e-mails), or ''."""
    value = (_raw(name) or "").strip().rstrip("/")
    if not value:
        return ""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ImproperlyConfigured(f"{PREFIX}{name} must be an absolute http(s) URL such as "
                                   f"https://lusweb.example.org, not {value!r}")
    return value
