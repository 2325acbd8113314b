"""Settings come from LUSWEB_* variables; bad values and missing production secrets fail loudly."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from lusweb.settings.database import database_settings
from lusweb.settings.env import env_bool, env_int, env_list, env_site_url, parse_database_url
from lusweb.settings.security import lockout_parameters, throttle_rate

ROOT = Path(__file__).resolve().parents[2]


def test_database_url_sqlite_relative_and_absolute(tmp_path: Path) -> None:
    assert parse_database_url("sqlite:///var/x.db", base_dir=tmp_path)["NAME"] == str(tmp_path / "var/x.db")
    assert parse_database_url("sqlite:////tmp/abs.db", base_dir=tmp_path)["NAME"] == "/tmp/abs.db"


def test_database_url_postgres_fields() -> None:
    db = parse_database_url("postgres://bob:s%40cret@db.local:5433/lus?sslmode=require", base_dir=Path("/"))
    assert db["ENGINE"] == "django.db.backends.postgresql"
    assert (db["NAME"], db["USER"], db["PASSWORD"], db["HOST"], db["PORT"]) == ("lus", "bob", "s@cret", "db.local", "5433")
    assert db["OPTIONS"] == {"sslmode": "require"}


@pytest.mark.parametrize("url, words", [
    ("mysql://x@y/z", "unsupported scheme 'mysql'"),
    ("postgres://x@y:notaport/z", "bad port"),
    ("postgres://x@y/", "names no database"),
])
def test_database_url_rejects(url: str, words: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=words):
        parse_database_url(url, base_dir=Path("/"))


def test_typed_readers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUSWEB_DEBUG", "yes")
    assert env_bool("DEBUG", False) is True
    monkeypatch.setenv("LUSWEB_DEBUG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="LUSWEB_DEBUG='maybe' is not a boolean"):
        env_bool("DEBUG", False)
    monkeypatch.setenv("LUSWEB_MAX_UPLOAD_MB", "lots")
    with pytest.raises(ImproperlyConfigured, match="LUSWEB_MAX_UPLOAD_MB='lots' is not an integer"):
        env_int("MAX_UPLOAD_MB", 200)
    monkeypatch.setenv("LUSWEB_MAX_UPLOAD_MB", "0")
    with pytest.raises(ImproperlyConfigured, match="must be >= 1"):
        env_int("MAX_UPLOAD_MB", 200, minimum=1)
    monkeypatch.setenv("LUSWEB_ALLOWED_HOSTS", "a.org, b.org,")
    assert env_list("ALLOWED_HOSTS", []) == ["a.org", "b.org"]
    monkeypatch.setenv("LUSWEB_SITE_URL", "https://lusweb.example.org/")
    assert env_site_url("SITE_URL") == "https://lusweb.example.org"
    monkeypatch.setenv("LUSWEB_SITE_URL", "lusweb.example.org")
    with pytest.raises(ImproperlyConfigured, match="LUSWEB_SITE_URL must be an absolute http"):
        env_site_url("SITE_URL")
    monkeypatch.delenv("LUSWEB_SITE_URL")
    assert env_site_url("SITE_URL") == ""


def _load_settings(module: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LUSWEB_")}
    clean.update(env)
    clean["DJANGO_SETTINGS_MODULE"] = module
    code = "import django; django.setup(); from django.conf import settings; print(settings.DATABASES['default']['ENGINE'], settings.DEBUG, settings.MAX_UPLOAD_MB)"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120)


def test_local_defaults_need_nothing() -> None:
    out = _load_settings("lusweb.settings.local", {})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["django.db.backends.sqlite3", "True", "200"]


def test_a_fresh_clone_passes_the_system_check(tmp_path: Path) -> None:
    """`make demo` starts with `migrate`, whose system check wants the upload folder to exist."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LUSWEB_")}
    clean.update(DJANGO_SETTINGS_MODULE="lusweb.settings.local", LUSWEB_VAR_DIR=str(tmp_path / "var"))
    out = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=clean, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "var" / "tmp").is_dir() and (tmp_path / "var" / "media").is_dir()


def test_production_refuses_without_secret_key() -> None:
    out = _load_settings("lusweb.settings.production", {"LUSWEB_DATABASE_URL": "postgres://u@h/db"})
    assert out.returncode != 0
    assert "LUSWEB_SECRET_KEY must be set" in out.stderr


def test_production_refuses_sqlite() -> None:
    out = _load_settings("lusweb.settings.production", {"LUSWEB_SECRET_KEY": "x" * 50})
    assert out.returncode != 0
    assert "LUSWEB_DATABASE_URL must point to PostgreSQL" in out.stderr


def test_production_starts_with_secret_and_postgres() -> None:
    out = _load_settings("lusweb.settings.production", {
        "LUSWEB_SECRET_KEY": "x" * 50, "LUSWEB_DATABASE_URL": "postgres://u@h/db", "LUSWEB_MAX_UPLOAD_MB": "50",
    })
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["django.db.backends.postgresql", "False", "50"]


def test_bad_value_stops_startup() -> None:
    out = _load_settings("lusweb.settings.local", {"LUSWEB_DEVICE": "tpu"})
    assert out.returncode != 0
    assert "LUSWEB_DEVICE='tpu' must be one of auto, cpu, cuda" in out.stderr


def _budget_of(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LUSWEB_")}
    clean.update(env)
    clean["DJANGO_SETTINGS_MODULE"] = "lusweb.settings.local"
    code = ("import django; django.setup(); from patients.imaging.budget import clip_budget; b = clip_budget(); "
            "print(b.max_frames, b.max_pixels_per_frame, b.max_decoded_bytes)")
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120)


def test_clip_budget_defaults_and_overrides() -> None:
    defaults = _budget_of({})
    assert defaults.returncode == 0, defaults.stderr
    assert defaults.stdout.split() == ["2000", str(1920 * 1080 * 3), str(256 * 1024 * 1024)]
    custom = _budget_of({"LUSWEB_MAX_FRAMES": "300", "LUSWEB_MAX_PIXELS_PER_FRAME": "1000000",
                         "LUSWEB_MAX_DECODED_MB": "64"})
    assert custom.returncode == 0, custom.stderr
    assert custom.stdout.split() == ["300", "1000000", str(64 * 1024 * 1024)]


@pytest.mark.parametrize("name, value, words", [
    ("MAX_FRAMES", "0", "LUSWEB_MAX_FRAMES=0 must be >= 1"),
    ("MAX_FRAMES", "2k", "LUSWEB_MAX_FRAMES='2k' is not an integer"),
    ("MAX_PIXELS_PER_FRAME", "-1", "LUSWEB_MAX_PIXELS_PER_FRAME=-1 must be >= 1"),
    ("MAX_DECODED_MB", "0.5", "LUSWEB_MAX_DECODED_MB='0.5' is not an integer"),
    ("MAX_DECODED_MB", "0", "LUSWEB_MAX_DECODED_MB=0 must be >= 1"),
    ("WORKER_NICE", "20", "LUSWEB_WORKER_NICE=20 must be <= 19"),
    ("WORKER_NICE", "-5", "LUSWEB_WORKER_NICE=-5 must be >= 0"),
    ("PAGE_CACHE_ENTRIES", "-1", "LUSWEB_PAGE_CACHE_ENTRIES=-1 must be >= 0"),
    ("PAGE_CACHE_ENTRIES", "many", "LUSWEB_PAGE_CACHE_ENTRIES='many' is not an integer"),
    ("WEB_CONCURRENCY", "-2", "LUSWEB_WEB_CONCURRENCY=-2 must be >= 0"),
    ("WEB_QUEUE_SECONDS", "0", "LUSWEB_WEB_QUEUE_SECONDS=0 must be >= 1"),
    ("WEB_KEEPALIVE_REQUESTS", "-1", "LUSWEB_WEB_KEEPALIVE_REQUESTS=-1 must be >= 0"),
])
def test_bad_budget_stops_startup(name: str, value: str, words: str) -> None:
    out = _load_settings("lusweb.settings.local", {f"LUSWEB_{name}": value})
    assert out.returncode != 0
    assert f"ImproperlyConfigured: {words}" in out.stderr


def _setting(module: str, env: dict[str, str], expression: str) -> subprocess.CompletedProcess[str]:
    """Print ``expression`` (over ``settings``) as JSON from a fresh process with ``module`` and ``env``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LUSWEB_")}
    clean.update(env)
    clean["DJANGO_SETTINGS_MODULE"] = module
    code = f"import django, json; django.setup(); from django.conf import settings; print(json.dumps({expression}, default=str))"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120)


PROD = {"LUSWEB_SECRET_KEY": "x" * 50, "LUSWEB_DATABASE_URL": "postgres://u@h/db"}


def test_postgres_connections_come_from_a_bounded_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    db = database_settings("postgres://u@h/db", base_dir=Path("/"), pool_default=True)
    assert db["CONN_MAX_AGE"] == 0
    assert db["OPTIONS"]["pool"] == {"min_size": 0, "max_size": 8, "max_idle": 5.0, "timeout": 10.0}
    for name, value in {"DB_POOL_MIN": "2", "DB_POOL_MAX": "12", "DB_POOL_MAX_IDLE": "30", "DB_POOL_TIMEOUT": "3"}.items():
        monkeypatch.setenv(f"LUSWEB_{name}", value)
    db = database_settings("postgres://u@h/db?sslmode=require", base_dir=Path("/"), pool_default=True)
    assert db["OPTIONS"] == {"sslmode": "require",
                             "pool": {"min_size": 2, "max_size": 12, "max_idle": 30.0, "timeout": 3.0}}
    # Unit tests run without the pool unless asked; SQLite never has one.
    assert "pool" not in database_settings("postgres://u@h/db", base_dir=Path("/"), pool_default=False)["OPTIONS"]
    assert "OPTIONS" not in database_settings("sqlite:///x.db", base_dir=Path("/"), pool_default=True)


def test_persistent_connections_only_without_the_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUSWEB_DB_CONN_MAX_AGE", "60")
    with pytest.raises(ImproperlyConfigured, match="LUSWEB_DB_CONN_MAX_AGE=60 must be 0 while LUSWEB_DB_POOL is on"):
        database_settings("postgres://u@h/db", base_dir=Path("/"), pool_default=True)
    monkeypatch.setenv("LUSWEB_DB_POOL", "0")
    db = database_settings("postgres://u@h/db", base_dir=Path("/"), pool_default=True)
    assert db["CONN_MAX_AGE"] == 60 and "pool" not in db["OPTIONS"]


@pytest.mark.parametrize("env, words", [
    ({"LUSWEB_DB_POOL_MAX": "0"}, "LUSWEB_DB_POOL_MAX=0 must be >= 1"),
    ({"LUSWEB_DB_POOL_MAX": "many"}, "LUSWEB_DB_POOL_MAX='many' is not an integer"),
    ({"LUSWEB_DB_POOL_MIN": "5", "LUSWEB_DB_POOL_MAX": "4"}, "LUSWEB_DB_POOL_MAX=4 must be >= LUSWEB_DB_POOL_MIN=5"),
    ({"LUSWEB_DB_POOL_MIN": "-1"}, "LUSWEB_DB_POOL_MIN=-1 must be >= 0"),
    ({"LUSWEB_DB_POOL_MAX_IDLE": "0"}, "LUSWEB_DB_POOL_MAX_IDLE=0 must be >= 1"),
    ({"LUSWEB_DB_POOL_TIMEOUT": "0"}, "LUSWEB_DB_POOL_TIMEOUT=0 must be >= 1"),
    ({"LUSWEB_DB_POOL": "sometimes"}, "LUSWEB_DB_POOL='sometimes' is not a boolean"),
    ({"LUSWEB_DB_CONN_MAX_AGE": "-5", "LUSWEB_DB_POOL": "0"}, "LUSWEB_DB_CONN_MAX_AGE=-5 must be >= 0"),
])
def test_bad_connection_settings_stop_startup(env: dict[str, str], words: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ImproperlyConfigured, match=re.escape(words)):
        database_settings("postgres://u@h/db", base_dir=Path("/"), pool_default=True)


def test_production_uses_the_pool() -> None:
    out = _setting("lusweb.settings.production", {**PROD, "LUSWEB_DB_POOL_MAX": "6"},
                   "[settings.DATABASES['default']['CONN_MAX_AGE'], settings.DATABASES['default']['OPTIONS']['pool']]")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [0, {"min_size": 0, "max_size": 6, "max_idle": 5.0, "timeout": 10.0}]
    out = _setting("lusweb.settings.production", {**PROD, "LUSWEB_DB_CONN_MAX_AGE": "60"}, "1")
    assert out.returncode != 0 and "LUSWEB_DB_CONN_MAX_AGE=60 must be 0 while LUSWEB_DB_POOL is on" in out.stderr


def test_lockout_and_rate_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    assert lockout_parameters(["ip", "username"]) == ["ip_address", "username"]
    monkeypatch.setenv("LUSWEB_LOGIN_LOCKOUT_BY", "username, ip+username")
    assert lockout_parameters(["ip"]) == ["username", ["ip_address", "username"]]
    monkeypatch.setenv("LUSWEB_LOGIN_LOCKOUT_BY", "ip,email")
    with pytest.raises(ImproperlyConfigured, match="'email' is not one of ip, username, ip\\+username"):
        lockout_parameters(["ip"])
    monkeypatch.setenv("LUSWEB_LOGIN_LOCKOUT_BY", ",")
    with pytest.raises(ImproperlyConfigured, match="LUSWEB_LOGIN_LOCKOUT_BY is empty"):
        lockout_parameters(["ip"])
    assert throttle_rate("API_RATE_USER", "1200/min") == "1200/min"
    for bad in ("fast", "0/min", "10/fortnight", "10"):
        monkeypatch.setenv("LUSWEB_API_RATE_USER", bad)
        with pytest.raises(ImproperlyConfigured, match=f"LUSWEB_API_RATE_USER='{bad}' is not a rate such as 120/min"):
            throttle_rate("API_RATE_USER", "1200/min")


def test_production_lockout_and_rates_from_the_environment() -> None:
    env = {**PROD, "LUSWEB_LOGIN_FAILURE_LIMIT": "5", "LUSWEB_LOGIN_COOLOFF_MINUTES": "30",
           "LUSWEB_LOGIN_LOCKOUT_BY": "username", "LUSWEB_API_RATE_AUTH": "5/min"}
    out = _setting("lusweb.settings.production", env, "[settings.AXES_FAILURE_LIMIT, settings.AXES_COOLOFF_TIME.total_seconds(), "
                   "settings.AXES_LOCKOUT_PARAMETERS, settings.REST_FRAMEWORK['DEFAULT_THROTTLE_RATES']]")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [5, 1800.0, ["username"], {"anon": "120/min", "user": "1200/min", "auth": "5/min"}]
    out = _setting("lusweb.settings.production", {**PROD, "LUSWEB_LOGIN_FAILURE_LIMIT": "0"}, "1")
    assert out.returncode != 0 and "LUSWEB_LOGIN_FAILURE_LIMIT=0 must be >= 1" in out.stderr


HTTPS_CHECK = """
from django.http import HttpResponse
from django.middleware.security import SecurityMiddleware
from django.test import RequestFactory
rf, mw = RequestFactory(), SecurityMiddleware(lambda r: HttpResponse("ok"))
host = {"HTTP_HOST": "lusweb.example.org"}
secure, plain = mw(rf.get("/", secure=True, **host)), mw(rf.get("/patients/1/", **host))
proxied, health = mw(rf.get("/", HTTP_X_FORWARDED_PROTO="https", **host)), mw(rf.get("/healthz/", **host))
print(json.dumps([secure["Strict-Transport-Security"], plain.status_code, plain["Location"],
                  proxied.status_code, proxied.get("Strict-Transport-Security"), health.status_code]))
"""


def test_production_is_https_only_with_hsts() -> None:
    env = {**PROD, "LUSWEB_ALLOWED_HOSTS": "lusweb.example.org"}
    out = _setting("lusweb.settings.production", env, "[settings.SECURE_HSTS_SECONDS, settings.SECURE_HSTS_INCLUDE_SUBDOMAINS, "
                   "settings.SECURE_HSTS_PRELOAD, settings.SECURE_SSL_REDIRECT, settings.SESSION_COOKIE_SECURE]")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [31536000, True, False, True, True]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LUSWEB_")}
    run = subprocess.run([sys.executable, "-c", "import django, json; django.setup()\n" + HTTPS_CHECK], cwd=ROOT,
                         env={**clean, **env, "DJANGO_SETTINGS_MODULE": "lusweb.settings.production"},
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == ["max-age=31536000; includeSubDomains", 301, "https://lusweb.example.org/patients/1/",
                                      200, "max-age=31536000; includeSubDomains", 200]
    out = _setting("lusweb.settings.production", {**env, "LUSWEB_HSTS_SECONDS": "-1"}, "1")
    assert out.returncode != 0 and "LUSWEB_HSTS_SECONDS=-1 must be >= 0" in out.stderr
    out = _setting("lusweb.settings.production", {**env, "LUSWEB_CSP_REPORT_ONLY": "perhaps"}, "1")
    assert out.returncode != 0 and "LUSWEB_CSP_REPORT_ONLY='perhaps' is not a boolean" in out.stderr
