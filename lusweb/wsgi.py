"""WSGI entry point (the ASGI one in ``asgi.py`` is what production serves)."""
from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lusweb.settings.local")
application = get_wsgi_application()

from lusweb.warmup import process_warm  # noqa: E402  (needs the settings configured above)
from patients.imaging.tempfiles import tempfiles_clean  # noqa: E402

tempfiles_clean()  # uploads a killed server process was receiving: remove the stale ones
process_warm()  # the first requests must not wait for the imports (lusweb.warmup)
