"""Laptop settings: SQLite, local media, debug on, a throw-away secret key."""
from __future__ import annotations

from lusweb.settings.base import *  # noqa: F403
from lusweb.settings.env import env_bool, env_str

DEBUG = env_bool("DEBUG", True)
SECRET_KEY = env_str("SECRET_KEY", "local-development-only-not-secret") or ""

# A laptop starts from nothing: create the folder that holds the SQLite file, media and broker.
VAR_DIR.mkdir(parents=True, exist_ok=True)  # noqa: F405
