"""Load a server process's code before it takes its first request.

Django imports the URLconf (and with it every view module, DRF, SciPy, the exporters) and Celery
its producer on the first request that needs them. In a process of the production server that
first request is often an upload arriving together with others: the import holds the interpreter's
import lock for about a second, and every request of that process waits for it, ``/healthz/``
included (measured: a probe at 1.6 s and uploads at 2.2 s instead of 0.45 s, in
``tests/patients/imaging/test_ingest_server.py``). Paying it at start-up, before the process
listens, removes that stall.
"""
from __future__ import annotations

import logging
import time

logger = logging.getLogger(__name__)


def process_warm() -> float:
    """Import every view module and the task producer; the seconds it took. Opens no connection:
    a database or broker that is down must not keep the server from starting."""
    from django.urls import get_resolver  # lazy: the URLconf needs the settings set up

    from lusweb.celery import app  # lazy: the Celery app reads the settings

    start = time.perf_counter()
    get_resolver().url_patterns  # noqa: B018  (the attribute access imports every URLconf and view)
    app.finalize(auto=True)
    app.amqp.producer_pool  # noqa: B018  (kombu's producer classes; no connection is made)
    app.events  # noqa: B018  (the task-sent event dispatcher, imported on the first publish)
    seconds = time.perf_counter() - start
    logger.debug("server process warmed in %.2f s", seconds)
    return seconds
