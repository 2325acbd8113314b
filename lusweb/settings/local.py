"""Laptop settings: SQLite, local media, debug on, a throw-away secret key."""
from __future__ import annotations

from lusweb.settings.base import *  # noqa: F403
from lusweb.settings.env import env_bool, env_str

DEBUG = env_bool("DEBUG", True)
SECRET_KEY = env_str("SECRET_KEY", "local-development-only-not-secret") or ""

# A laptop starts from nothing: create the folders of the SQLite file, media, uploads being received
# and the broker (a fresh clone's `make demo` failed its system check on the missing var/tmp).
for _folder in (VAR_DIR, TEMP_DIR, MEDIA_ROOT):  # noqa: F405
    _folder.mkdir(parents=True, exist_ok=True)
