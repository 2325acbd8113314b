"""Production settings: no defaults for secrets; PostgreSQL only; secure cookies."""
from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from lusweb.settings.base import *  # noqa: F403
from lusweb.settings.base import DATABASES
from lusweb.settings.env import env_bool, env_int, env_str

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY", "") or ""
if len(SECRET_KEY) < 32:
    raise ImproperlyConfigured(
        "LUSWEB_SECRET_KEY must be set to a random string of at least 32 characters in production"
    )
if env_str("DATABASE_URL") is None or DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("LUSWEB_DATABASE_URL must point to PostgreSQL (postgres://...) in production")

SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
# HTTPS only (issue 15): the TLS proxy in front says "https" in X-Forwarded-Proto (it must set or
# strip that header); plain-HTTP requests are redirected, except the container's own health check.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SSL_REDIRECT", True)
SECURE_REDIRECT_EXEMPT = [r"^healthz/$"]
SECURE_HSTS_SECONDS = env_int("HSTS_SECONDS", 365 * 24 * 3600, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("HSTS_PRELOAD", False)
STORAGES = SERVED_STORAGES  # noqa: F405
