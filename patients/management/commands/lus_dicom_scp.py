"""``manage.py lus_dicom_scp``: the DICOM receiver (C-ECHO, C-STORE; see patients.receiving.scp)."""
from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from patients.receiving.scp import receiver_start


class Command(BaseCommand):
    help = ("Receive ultrasound images from ultrasound machines over DICOM (C-STORE) on LUSWEB_DICOM_PORT as "
            "LUSWEB_DICOM_AE_TITLE; senders are allowed per study (its calling AE titles).")

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default: all)")
        parser.add_argument("--port", type=int, default=None, help="default: LUSWEB_DICOM_PORT")
        parser.add_argument("--ae-title", default=None, help="default: LUSWEB_DICOM_AE_TITLE")

    def handle(self, *args: Any, **options: Any) -> None:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        logging.getLogger("pynetdicom").setLevel(logging.WARNING)
        port = options["port"] or settings.DICOM_PORT
        server = receiver_start(host=options["host"], port=port, ae_title=options["ae_title"])
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        self.stdout.write(f"DICOM receiver {options['ae_title'] or settings.DICOM_AE_TITLE} listening on "
                          f"{options['host']}:{port}", ending="\n")
        self.stdout.flush()
        stop.wait()
        server.shutdown()
