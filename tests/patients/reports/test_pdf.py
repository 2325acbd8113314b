"""The PDF report read back with poppler (pdftotext, pdfinfo, pdftoppm) against the database."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from patients.records.models import BloodGas
from patients.reports.content import exam_report
from patients.reports.pdf import exam_pdf
from patients.studies.models import Role
from patients.studies.protocols import get_protocol
from tests.conftest import require
from tests.factories import ExamFactory
from tests.patients.dashboards import builders
from tests.patients.reports.conftest import CODES, PREVIOUS, Case, output_dir, sign_all


def _tool(name: str) -> str:
    exe = shutil.which(name)
    require(exe is not None, f"{name} not installed (Debian package poppler-utils)")
    assert exe is not None
    return exe


def pdf_text(data: bytes, path: Path) -> str:
    path.write_bytes(data)
    run = subprocess.run([_tool("pdftotext"), "-layout", str(path), "-"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return run.stdout


def pdf_pages(path: Path) -> int:
    run = subprocess.run([_tool("pdfinfo"), str(path)], capture_output=True, text=True, timeout=60)
    match = re.search(r"^Pages:\s+(\d+)", run.stdout, re.M)
    assert match, run.stdout
    return int(match.group(1))


def png_of_page_one(path: Path) -> Path:
    stem = path.with_suffix("")
    subprocess.run([_tool("pdftoppm"), "-png", "-r", "60", "-singlefile", str(path), str(stem)], check=True,
                   timeout=60)
    png = stem.with_suffix(".png")
    assert png.stat().st_size > 5000  # a page with a drawing, not a blank
    return png


def zone_rows(text: str) -> dict[str, list[str]]:
    """Each zone row of the table: its cells split on runs of spaces."""
    rows = {}
    for line in text.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if cells and cells[0] in CODES and len(cells) >= 5:
            rows[cells[0]] = cells
    return rows


def _report(case: Case, role: str) -> tuple[str, Path]:
    user = case.users[role]
    data = exam_pdf(exam_report(exam=case.exam, user=user))
    assert data.startswith(b"%PDF")
    path = output_dir("exam-report") / f"report-{role}.pdf"
    return pdf_text(data, path), path


def test_clinician_pdf_is_one_page_with_the_record(case: Case) -> None:
    text, path = _report(case, Role.CLINICIAN)
    assert pdf_pages(path) == 1
    png_of_page_one(path)
    flat = " ".join(text.split())
    assert "Ana Lima Ferreira" in flat and "H7654321" in flat and "W9-017" in flat
    assert "2026-03-04 12:00" in flat or "2026-03-04" in flat
    luss = sum(case.record.values())
    assert f"LUSS (sum of record scores): {luss} / 36" in flat
    assert f"mean zone score {luss / 12:.2f}" in flat
    assert "worst zone R3 (3)" in flat  # R3 and R4 are 3; R3 comes first
    assert "9 of 12 scored zones read by a clinician, 3 AI, not reviewed" in flat
    rows = zone_rows(text)
    assert set(rows) == set(CODES)
    for zone in CODES:
        cells = rows[zone]
        assert cells[2] == str(case.record[zone]), (zone, cells)
        source = " ".join(cells[3:-3])
        if case.source[zone] == "ai":
            assert "AI, not reviewed" in source and "lus-test-7" in source, cells
        else:
            assert "clinician, clinician-rep" in source, cells
        assert cells[-2] == str(PREVIOUS[zone])
        assert cells[-1] == (f"{case.record[zone] - PREVIOUS[zone]:+d}" if case.record[zone] != PREVIOUS[zone]
                             else "+0")


def test_gas_and_the_ai_part(case: Case) -> None:
    text, _ = _report(case, Role.CLINICIAN)
    flat = " ".join(text.split())
    gas = BloodGas.objects.filter(patient=case.patient, sampled_at__lte=case.exam.acquired_at).latest("sampled_at")
    assert gas.pao2_mmhg == 72.0
    assert f"PaO2 {gas.pao2_mmhg:.1f} mmHg ({gas.pao2_mmhg / 7.50062:.1f} kPa)" in flat
    assert f"PaCO2 {gas.paco2_mmhg:.1f} mmHg ({gas.paco2_mmhg / 7.50062:.1f} kPa)" in flat
    assert f"P/F {gas.pao2_mmhg / gas.fio2:.0f} mmHg" in flat
    assert "pH 7.31" in flat and "FiO2 0.40 (40 %)" in flat and "3.0 h before the exam" in flat
    assert "7.22" not in flat  # the gas after the exam is not reported
    assert "(AI, not reviewed): L4, L5, L6" in flat
    assert "Model version(s) of the AI readings: lus-test-7" in flat
    assert "score of record" in flat
    assert "Review: draft (not signed)" in flat


def test_signed_report_names_the_reviewer(case: Case) -> None:
    sign_all(case)
    text, path = _report(case, Role.CLINICIAN)
    flat = " ".join(text.split())
    assert "Review: reviewed (signed) · signed off by clinician-rep" in flat
    assert "12 of 12 scored zones read by a clinician, 0 AI, not reviewed" in flat
    assert "(AI, not reviewed): none" in flat
    assert pdf_pages(path) == 1


def test_researcher_pdf_has_the_pseudonym_only(case: Case) -> None:
    text, path = _report(case, Role.RESEARCHER)
    png_of_page_one(path)
    flat = " ".join(text.split())
    assert "W9-017" in flat and "identity not shown" in flat
    for secret in ("Ana Lima", "H7654321", "2026-03-04", "2026-03-02", "Venue Go 2026"):
        assert secret not in flat, secret
    assert "day 3.5" in flat  # 2026-03-04 12:00 UTC, admitted 2026-03-01 (test time zone UTC)
    assert f"LUSS (sum of record scores): {sum(case.record.values())} / 36" in flat
    assert pdf_pages(path) == 1


def test_a_fourteen_zone_exam_fits_one_page(case: Case) -> None:
    exam = ExamFactory(patient=case.patient, protocol="14-zone", acquired_at=case.exam.acquired_at.replace(day=6))
    codes = get_protocol("14-zone").codes
    builders.record_scores(exam, {z: i % 4 for i, z in enumerate(codes)}, mv=builders.model_version("lus-test-7"))
    data = exam_pdf(exam_report(exam=exam, user=case.users[Role.CLINICIAN]))
    path = output_dir("exam-report") / "report-14-zone.pdf"
    text = pdf_text(data, path)
    assert pdf_pages(path) == 1
    assert len(zone_rows(text)) >= 12
