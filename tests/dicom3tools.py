"""dicom3tools' IOD validator (``dciodvfy``, Debian package ``dicom3tools``) for the tests.

Everything LUSWeb writes as DICOM (de-identified copies, video converted to DICOM, the exam's
Structured Report) must validate without errors. Warnings are reported but do not fail a test.
"""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import require


@dataclass(frozen=True)
class Verdict:
    """What ``dciodvfy`` said of one file: its error lines and its warning lines."""

    errors: list[str]
    warnings: list[str]
    output: str


def dciodvfy(path: Path) -> Verdict:
    """Run ``dciodvfy`` on ``path``; skips (fails under LUSWEB_TEST_STRICT=1) when it is missing."""
    exe = shutil.which("dciodvfy")
    require(exe is not None, "dciodvfy not installed (Debian package dicom3tools)")
    assert exe is not None
    run = subprocess.run([exe, "-filename", str(path)], capture_output=True, text=True, timeout=120)
    output = run.stdout + run.stderr
    lines = [line.strip() for line in output.splitlines()]
    errors = [line for line in lines if line.startswith("Error") or line.startswith("Abort")]
    warnings = [line for line in lines if line.startswith("Warning")]
    return Verdict(errors, warnings, output)
