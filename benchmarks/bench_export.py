"""Cohort export throughput and memory: a 100,000-row zone-level CSV.

Not a test: builds ``--rows`` zone rows (12-zone exams, each scored, with blood gases, clinical
records, severities and a few overrides) with ``bulk_create`` in a throw-away SQLite database
(temporary ``LUSWEB_VAR_DIR``, ``lusweb.settings.local``), then streams the export and prints
rows/s and the tracemalloc peak, e.g. ``zone/long: 100000 rows in 9.1 s = 11000 rows/s, peak 14 MB``.

    .venv/bin/python benchmarks/bench_export.py [--rows 100000] [--batch 500]

:func:`benchmarks.cohorts.build_cohort` builds it (``tests/patients/research/test_export.py`` too).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import tracemalloc
import warnings
from pathlib import Path

import django
from django.core.management import call_command

ROOT = Path(__file__).resolve().parent.parent


def _setup() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="lusweb-bench-export-"))
    os.environ["LUSWEB_VAR_DIR"] = str(tmp)
    os.environ.pop("LUSWEB_DATABASE_URL", None)  # always the temporary SQLite file
    os.environ["DJANGO_SETTINGS_MODULE"] = "lusweb.settings.local"
    os.environ["LUSWEB_DEBUG"] = "0"  # DEBUG would keep every query in memory
    sys.path.insert(0, str(ROOT))
    warnings.filterwarnings("ignore", message="No directory at")
    django.setup()
    call_command("migrate", verbosity=0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    _setup()
    # lazy: models import only once _setup() has configured Django
    from django.contrib.auth import get_user_model

    from benchmarks.cohorts import build_cohort
    from patients.research.export.params import ExportParams
    from patients.research.export.stream import stream_csv
    from patients.studies.models import Study

    study = Study.objects.create(name="Bench export", protocol="12-zone")
    get_user_model().objects.create(username="bench-researcher")
    exams_per_patient = 10
    n_exams = -(-args.rows // 12)
    t0 = time.perf_counter()
    counts = build_cohort(study, patients=-(-n_exams // exams_per_patient), exams_per_patient=exams_per_patient)
    print(f"built {counts['clips']} zone rows ({counts['exams']} exams, {counts['patients']} patients) "
          f"in {time.perf_counter() - t0:.1f} s")
    for level, fmt in (("zone", "long"), ("exam", "wide"), ("patient", "long")):
        params = ExportParams(level=level, format=fmt)
        t0 = time.perf_counter()
        rows = -1  # the header
        size = 0
        for chunk in stream_csv(study, params, batch=args.batch):
            rows += chunk.count("\n")
            size += len(chunk)
        elapsed = time.perf_counter() - t0
        # A second pass under tracemalloc (which slows Python down) for the peak memory.
        tracemalloc.start()
        for _chunk in stream_csv(study, params, batch=args.batch):
            pass
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"{level}/{fmt}: {rows} rows, {size / 1e6:.1f} MB of CSV in {elapsed:.1f} s = "
              f"{rows / elapsed:,.0f} rows/s, peak {peak / 1e6:.1f} MB (tracemalloc)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
