"""The import-linter contracts of ``pyproject.toml`` fail on what they are there to stop.

Each case copies the product's Python sources to a temporary folder, makes one change a future
commit could make, and runs ``lint-imports`` (as ``make test`` does) on the copy: a reverse
dependency between layers, Django in the pure core, training imported by inference, the
models' entry point imported by a capability, and a cycle between two modules. The unchanged
copy passes, so a failure is the change's doing.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("lusweb", "patients", "scoring", "benchmarks")


def _copy(tmp_path: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__", "weights"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    lint = Path(sys.executable).with_name("lint-imports")
    return subprocess.run([str(lint), "--no-cache", "--no-logo", "--config", "pyproject.toml"], cwd=root,
                          capture_output=True, text=True, timeout=120, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})


def _broken(out: subprocess.CompletedProcess[str]) -> list[str]:
    """Names of the contracts lint-imports reports broken (it wraps long names over lines)."""
    text = " ".join(out.stdout.split())
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    return [c["name"] for c in contracts if f"{c['name']} BROKEN" in text]


def _append(path: Path, line: str) -> None:
    path.write_text(path.read_text() + f"\n{line}\n")


def test_the_tree_as_committed_keeps_every_contract(tmp_path: Path) -> None:
    out = _lint(_copy(tmp_path))
    assert out.returncode == 0, out.stdout + out.stderr
    assert _broken(out) == [] and "0 broken" in out.stdout


@pytest.mark.parametrize(("module", "line", "contract"), [
    ("patients/records/services.py", "import scoring.services  # noqa", "Dependencies run one way"),
    ("patients/imaging/ingest.py", "from patients.dashboards import views  # noqa", "Dependencies run one way"),
    ("patients/audit/services.py", "from patients.studies import permissions  # noqa", "Dependencies run one way"),
    ("scoring/core/stats.py", "import django.conf  # noqa", "pure Python"),
    ("patients/imaging/core/sector.py", "import scoring.core.stats  # noqa", "Dependencies run one way"),
    ("scoring/core/inference/scorer.py", "import scoring.core.training.cv  # noqa", "inference never imports training"),
    ("patients/research/agreement.py", "import patients.models  # noqa", "never from the patients app's entry point"),
])
def test_a_reverse_dependency_breaks_a_contract(tmp_path: Path, module: str, line: str, contract: str) -> None:
    root = _copy(tmp_path)
    _append(root / module, line)
    out = _lint(root)
    assert out.returncode != 0
    assert [name for name in _broken(out) if contract in name], out.stdout


def test_a_cycle_between_two_modules_breaks_a_contract(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    # records.chrono imports records.models; the reverse import closes a cycle inside one package.
    _append(root / "patients/records/models.py", "from patients.records import chrono  # noqa")
    out = _lint(root)
    assert out.returncode != 0
    assert _broken(out) == ["No dependency cycle between sibling packages or modules"], out.stdout
