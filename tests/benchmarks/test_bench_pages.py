"""The laptop defaults (``lusweb.settings.local``: SQLite, as ``make demo`` runs) serve every
dashboard page and API: ``benchmarks/bench_pages.py`` run small in its own process, where each
request must answer 200 (the test suite itself runs on PostgreSQL, which accepts SQL that SQLite
refuses: an ORDER BY inside a UNION once made the patient timeline a 500 on the laptop)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_dashboard_page_answers_on_the_laptop_defaults(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LUSWEB_", "DJANGO_"))}
    env["LUSWEB_VAR_DIR"] = str(tmp_path)
    run = subprocess.run([sys.executable, "-m", "benchmarks.bench_pages", "--exams", "3", "--others", "1",
                          "--requests", "1"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    pages = [line.split(":")[0] for line in run.stdout.splitlines() if "ms (target" in line]
    assert pages == ["timeline page", "timeline API", "study overview", "correlation page (patient)",
                     "correlation API (patient)", "correlation page (study)", "correlation API (study)"]
