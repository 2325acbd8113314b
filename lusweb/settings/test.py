"""Test settings: fast hashing, media in a temporary folder, eager-free Celery."""
from __future__ import annotations

import tempfile
from pathlib import Path

from lusweb.settings.base import *  # noqa: F403
from lusweb.settings.env import env_bool, env_str

SECRET_KEY = "test-only-not-secret"
# Unit tests enqueue nothing; the pipeline tests turn this on (in their worker process through
# the environment) and run a real worker.
SCORING_ON_UPLOAD = env_bool("SCORING_ON_UPLOAD", False)
SEVERITY_ON_READING = False
DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", tempfile.mkdtemp(prefix="lusweb-test-media-")) or "")
TEMP_DIR = Path(env_str("TEMP_DIR", tempfile.mkdtemp(prefix="lusweb-test-tmp-")) or "")
FILE_UPLOAD_TEMP_DIR = str(TEMP_DIR)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Connections opened by Channels' worker threads must not outlive a test (teardown drops the DB).
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
