"""Serve the site with its background worker, for `make demo` on a bare machine."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from lusweb.celery import WORKER_QUEUES, ensure_filesystem_broker


class Command(BaseCommand):
    help = "Run the ASGI site on 127.0.0.1:8000 and a Celery worker (queues ingest,gpu,cpu) beside it."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--addr", default="127.0.0.1:8000")

    def handle(self, *args: Any, **options: Any) -> None:
        ensure_filesystem_broker()
        env = dict(os.environ)
        env.setdefault("DJANGO_SETTINGS_MODULE", "lusweb.settings.local")
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "lusweb", "worker", "-Q", WORKER_QUEUES, "--concurrency", "1",
             "--loglevel", "INFO", "--hostname", "demo@%h"],
            env=env,
        )
        self.stdout.write(self.style.SUCCESS(f"worker started (pid {worker.pid}); broker: {settings.CELERY_BROKER_URL}"))
        self.stdout.write(self.style.SUCCESS(f"serving on http://{options['addr']}/  (Ctrl-C stops both)"))
        try:
            subprocess.call([sys.executable, "manage.py", "runserver", options["addr"], "--noreload"], env=env)
        except KeyboardInterrupt:
            pass
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                worker.kill()
