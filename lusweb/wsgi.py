"""WSGI entry point (the ASGI one in ``asgi.py`` is what production serves)."""
from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lusweb.settings.local")
application = get_wsgi_application()
