"""`make demo` serves on another port when asked (issue 16): `make demo PORT=8080`."""
from __future__ import annotations

import shutil
import subprocess

from tests.conftest import ROOT, require


def _dry_run(*args: str) -> str:
    require(shutil.which("make") is not None, "make is not installed")
    done = subprocess.run(["make", "-n", "--always-make", "demo", *args], cwd=ROOT, capture_output=True, text=True,
                          check=True, timeout=60)
    return done.stdout


def test_make_demo_serves_on_the_port_asked_for() -> None:
    assert "manage.py demo_serve --addr 127.0.0.1:8000" in _dry_run()
    assert "manage.py demo_serve --addr 127.0.0.1:8080" in _dry_run("PORT=8080")
    assert "manage.py demo_serve --addr 0.0.0.0:9001" in _dry_run("PORT=9001", "HOST=0.0.0.0")


def test_the_readme_documents_it() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make demo PORT=8080" in readme
