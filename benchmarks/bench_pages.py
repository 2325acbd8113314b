"""Server time of the dashboard pages and APIs for a patient with 50 exams x 12 zones.

Not a test: prints the median over 20 requests (after 2 warm-ups) of each view, e.g.
``timeline page: 45 ms (target 300 ms)``. Runs on a throw-away SQLite database in a temporary
``LUSWEB_VAR_DIR`` with ``lusweb.settings.local``; result rows are written directly (no model).

    .venv/bin/python benchmarks/bench_pages.py [--exams 50] [--others 19] [--requests 20]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import django
from django.core.management import call_command

ROOT = Path(__file__).resolve().parent.parent
TARGET_MS = 300.0


def _setup() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="lusweb-bench-pages-"))
    os.environ["LUSWEB_VAR_DIR"] = str(tmp)
    os.environ.pop("LUSWEB_DATABASE_URL", None)  # always the temporary SQLite file
    os.environ["DJANGO_SETTINGS_MODULE"] = "lusweb.settings.local"
    os.environ["LUSWEB_DEBUG"] = "0"  # DEBUG would record every query and slow the views down
    sys.path.insert(0, str(ROOT))
    warnings.filterwarnings("ignore", message="No directory at")  # whitenoise: no collectstatic needed here
    django.setup()
    call_command("migrate", verbosity=0)


def _median_ms(client: Any, url: str, n: int) -> float:
    for _ in range(2):  # warm-up: template loading, first queries
        assert client.get(url).status_code == 200, url
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - t0) * 1000)
        assert response.status_code == 200, url
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--exams", type=int, default=50)
    parser.add_argument("--others", type=int, default=19, help="other patients (5 exams each) in the study")
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()
    _setup()
    # lazy: models import only once _setup() has configured Django
    from django.test import Client

    from benchmarks.cohorts import page_cohort

    data = page_cohort(args.exams, args.others)
    client = Client(SERVER_NAME="localhost")
    client.force_login(data["user"])
    pid, sid = data["patient"].pk, data["study"].pk
    total_exams = args.exams + 5 * args.others
    print(f"patient: {args.exams} exams x 12 zones; study: {1 + args.others} patients, {total_exams} exams")
    for label, url in [
        ("timeline page", f"/patients/{pid}/timeline/"),
        ("timeline API", f"/api/v1/patients/{pid}/timeline/"),
        ("study overview", f"/studies/{sid}/overview/"),
        ("correlation page (patient)", f"/patients/{pid}/correlation/"),
        ("correlation API (patient)", f"/api/v1/patients/{pid}/correlation/"),
        ("correlation page (study)", f"/studies/{sid}/correlation/"),
        ("correlation API (study)", f"/api/v1/studies/{sid}/correlation/?unit=kPa"),
    ]:
        print(f"{label}: {_median_ms(client, url, args.requests):.0f} ms (target {TARGET_MS:.0f} ms)")


if __name__ == "__main__":
    main()
