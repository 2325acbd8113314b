"""The filesystem broker of the demo keeps all its files under LUSWEB_VAR_DIR."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SEND = (
    "import django; django.setup()\n"
    "from celery import signature\n"
    "from scoring.services import SCORE_EXAM_TASK\n"
    "signature(SCORE_EXAM_TASK, args=(1,)).apply_async(queue='gpu')\n"
)


def test_a_message_writes_nothing_outside_the_var_dir(tmp_path: Path) -> None:
    """Kombu keeps its exchange tables in ``./control`` unless told otherwise: processes started
    from the repository once committed them there."""
    cwd, var = tmp_path / "cwd", tmp_path / "var"
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LUSWEB_")}
    env.update(DJANGO_SETTINGS_MODULE="lusweb.settings.local", LUSWEB_VAR_DIR=str(var), PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", SEND], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert list(cwd.iterdir()) == []
    tables = list((var / "broker" / "control").iterdir())
    assert tables and all(p.suffix == ".exchange" for p in tables)
    messages = list((var / "broker" / "out").iterdir())
    assert len(messages) == 1 and "scoring.tasks.score_exam" in messages[0].read_text()
