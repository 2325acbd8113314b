"""scoring.engine, every scoring.core module and every patients.imaging.core module import without Django."""
from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_no_django_in_pure_core() -> None:
    import patients.imaging.core
    import scoring.core

    mods = sorted(m.name for pkg in (scoring.core, patients.imaging.core)
                  for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."))
    assert "scoring.core.inference.scorer" in mods and "patients.imaging.core.reader" in mods
    code = (
        "import importlib, sys\n"
        f"mods = {mods!r}\n"
        "import scoring.engine\n"
        "for m in mods: importlib.import_module(m)\n"
        "bad = [m for m in sys.modules if m == 'django' or m.startswith('django.')]\n"
        "print('DJANGO' if bad else 'CLEAN', bad[:5])\n"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("CLEAN"), out.stdout
