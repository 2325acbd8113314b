"""Every hostile input (``tests.hostile``) is refused by the reader with the default budget, with a
message naming the limit, and reading it in a fresh process stays far under 1.5 GB of memory."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from patients.imaging.core.reader import Budget, ClipReadError, OverBudget, read_clip
from tests.conftest import ROOT
from tests.hostile import HOSTILE

#: The issue's acceptance bound for the web and worker processes.
PEAK_LIMIT_MB = 1536

# Reads one file (or, for "-", nothing: the interpreter with the reader's decoders imported)
# and reports the refusal and the process's peak resident memory (VmHWM).
_CHILD = """
import json, sys
from patients.imaging.core.reader import ClipReadError, read_clip
code = message = shape = None
if sys.argv[1] == "-":
    import av, pydicom, PIL.Image, pydicom.pixels  # what reading any file loads
else:
    try:
        shape = list(read_clip(sys.argv[1]).frames.shape)
    except ClipReadError as exc:
        code, message = exc.code, str(exc)
peak_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"code": code, "message": message, "shape": shape, "peak_mb": round(peak_kb / 1024, 1)}))
"""


def peak_of_reading(path: str | Path) -> dict[str, object]:
    """Read ``path`` with ``read_clip`` in a fresh interpreter; its refusal and peak RSS in MB."""
    out = subprocess.run([sys.executable, "-c", _CHILD, str(path)], cwd=ROOT, capture_output=True, text=True,
                         timeout=300, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _record(name: str, line: str) -> None:
    """Keep the measured figures with the test output ($LUSWEB_TEST_OUTPUT/hostile-rss/)."""
    folder = Path(os.environ.get("LUSWEB_TEST_OUTPUT", tempfile.gettempdir())) / "hostile-rss"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.txt").write_text(line + "\n")


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_file_is_refused_naming_the_limit(name: str, hostile_file: Callable[[str], Path]) -> None:
    hostile = HOSTILE[name]
    with pytest.raises(ClipReadError) as info:
        read_clip(hostile_file(name))
    assert info.value.code == hostile.code, str(info.value)
    assert re.search(hostile.pattern, str(info.value)), str(info.value)
    if hostile.setting:
        assert isinstance(info.value, OverBudget) and str(info.value).endswith(f"({hostile.setting})")
    assert "Traceback" not in str(info.value) and len(str(info.value)) < 400


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_reading_a_hostile_file_stays_far_under_the_memory_bound(name: str, hostile_file: Callable[[str], Path]) -> None:
    path = hostile_file(name)
    baseline = peak_of_reading("-")
    result = peak_of_reading(path)
    assert result["code"] == HOSTILE[name].code, result
    peak = float(result["peak_mb"])  # type: ignore[arg-type]
    _record(name, f"{name}\t{path.stat().st_size} bytes\tpeak {peak} MB\tbaseline {baseline['peak_mb']} MB\t"
                  f"{result['code']}")
    assert peak < PEAK_LIMIT_MB, result
    # What the read itself added: the decoded budget at most, plus the file and the decoder's frames.
    added = peak - float(baseline["peak_mb"])  # type: ignore[arg-type]
    assert added < Budget().max_decoded_bytes / 2**20 + path.stat().st_size / 2**20 + 64, (result, baseline)
