"""Settings come from LUSWEB_* variables; bad values and missing production secrets fail loudly."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from lusweb.settings.env import env_bool, env_int, env_list, parse_database_url

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
])
def test_bad_budget_stops_startup(name: str, value: str, words: str) -> None:
    out = _load_settings("lusweb.settings.local", {f"LUSWEB_{name}": value})
    assert out.returncode != 0
    assert f"ImproperlyConfigured: {words}" in out.stderr
