"""A server process loads its code before it listens (``lusweb.warmup``): the first upload a
process takes must not hold the import lock while other requests of that process wait."""
from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT

_PROBE = """
import json, sys
import lusweb.{entry}
loaded = set(sys.modules)
from django.urls import get_resolver
get_resolver().url_patterns
from lusweb.celery import app
app.amqp.producer_pool
print(json.dumps({{"late": sorted(set(sys.modules) - loaded),
                  "views": sorted(m for m in loaded if m.endswith((".views", ".api")))}}))
"""


def _modules_after_start(entry: str) -> dict[str, list[str]]:
    """Modules imported by starting ``lusweb.<entry>`` in a fresh interpreter, and those the
    first request's URL resolution and first task publish would still have to import."""
    out = subprocess.run([sys.executable, "-c", _PROBE.format(entry=entry)], cwd=ROOT, check=True,
                         capture_output=True, text=True, timeout=120,
                         env={"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "lusweb.settings.test"})
    result: dict[str, list[str]] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_the_asgi_process_has_loaded_every_view_and_the_producer_before_its_first_request() -> None:
    modules = _modules_after_start("asgi")
    assert modules["late"] == []
    assert {"patients.imaging.api", "patients.dashboards.views", "patients.research.api", "scoring.views"} \
        <= set(modules["views"])


def test_the_wsgi_process_too() -> None:
    assert _modules_after_start("wsgi")["late"] == []
