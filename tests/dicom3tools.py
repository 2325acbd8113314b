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
    """What ``dciodvfy`` said of one file: its error lines, its warning lines, the IOD it checked
    the file against (e.g. ``USMultiFrameImage``; empty when it recognised none) and its exit status."""

    errors: list[str]
    warnings: list[str]
    output: str
    iod: str = ""
    returncode: int = 0

    @property
    def ok(self) -> bool:
        """No error, a recognised IOD, and a zero exit status (dciodvfy exits 1 on errors)."""
        return not self.errors and bool(self.iod) and self.returncode == 0

    def __str__(self) -> str:  # what an assertion message shows
        return f"dciodvfy: {len(self.errors)} errors, {len(self.warnings)} warnings, IOD {self.iod or '?'}\n{self.output}"


def _iod(lines: list[str]) -> str:
    """The IOD name dciodvfy prints on a line of its own (e.g. ``USImage``) before the module
    checks; absent when it recognised no IOD ("Error - Information Object Not found")."""
    for line in lines:
        if line and not line.startswith(("Filename", "Error", "Warning", "Abort")):
            return line
    return ""


def dciodvfy(path: Path) -> Verdict:
    """Run ``dciodvfy`` on ``path``; skips (fails under LUSWEB_TEST_STRICT=1) when it is missing."""
    exe = shutil.which("dciodvfy")
    require(exe is not None, "dciodvfy not installed (Debian package dicom3tools)")
    assert exe is not None
    run = subprocess.run([exe, "-filename", str(path)], capture_output=True, text=True, timeout=120)
    output = run.stdout + run.stderr
    # dciodvfy writes everything, the IOD's name included, to stderr; the last line (an error
    # such as "Information Object Not found") may lack its newline.
    lines = [line.strip() for line in output.splitlines()]
    errors = [line for line in lines if line.startswith("Error") or line.startswith("Abort")]
    warnings = [line for line in lines if line.startswith("Warning")]
    return Verdict(errors, warnings, output, _iod(lines), run.returncode)
