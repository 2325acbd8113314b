"""Test settings: fast hashing, media in a temporary folder, eager-free Celery."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from lusweb.settings.base import *  # noqa: F403
from lusweb.settings.base import BASE_DIR, DATABASE_URL, REST_FRAMEWORK
from lusweb.settings.database import database_settings
from lusweb.settings.env import env_bool, env_str
from lusweb.settings.security import API_RATES, throttle_rate

SECRET_KEY = "test-only-not-secret"
# Unit tests enqueue nothing; the pipeline tests turn this on (in their worker process through
# the environment) and run a real worker.
SCORING_ON_UPLOAD = env_bool("SCORING_ON_UPLOAD", False)
SCORING_PREPARE_ON_INGEST = env_bool("SCORING_PREPARE_ON_INGEST", False)  # tests that need it turn it on
SEVERITY_ON_READING = False
DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", tempfile.mkdtemp(prefix="lusweb-test-media-")) or "")
SITE_MODELS_DIR = MEDIA_ROOT / "models"
os.environ["LUSWEB_SITE_MODELS_DIR"] = str(SITE_MODELS_DIR)  # scoring.engine.load_scorer(version) finds them
TEMP_DIR = Path(env_str("TEMP_DIR", tempfile.mkdtemp(prefix="lusweb-test-tmp-")) or "")
FILE_UPLOAD_TEMP_DIR = str(TEMP_DIR)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# One connection per request and no pool in the test process: connections opened by Channels' and
# the live server's threads must not outlive a test (teardown drops the database). The server
# subprocesses of the hardening tests set LUSWEB_DB_POOL=1 to run with production's pool.
DATABASES = {"default": database_settings(DATABASE_URL, base_dir=BASE_DIR, pool_default=False)}
# The suite calls the API faster than any person; the throttling tests run with production's rates
# (API_RATES; a server subprocess through LUSWEB_API_RATE_*). The sign-in lockout keeps its real
# limits everywhere.
REST_FRAMEWORK = {**REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {
    scope: throttle_rate(f"API_RATE_{scope.upper()}", "100000/min") for scope in API_RATES
}}
