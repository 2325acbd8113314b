"""The exam report as a one-page A4 PDF (reportlab).

Patient (name and hospital number for clinicians and study admins, the patient code for
researchers), exam, the chest diagram of the record scores (the layout of
``templates/dashboards/_chest_diagram.html``: front, right side, left side, back; a zone whose
record is still the AI's has a dashed border and says "AI"), the summary, a table of the zones
(score of record, its source, the AI's score, the previous exam's record score and the change), the
latest blood gas at or before the exam, the sign-off and a statement of the AI's part. The text is
real text (``pdftotext`` reads it back); the font is DejaVu Sans when the system has it, else
reportlab's own Vera, so names outside Latin-1 print.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from patients.reports.content import AI_NOT_REVIEWED, ExamReport, Gas, ZoneLine

COLOURS = {0: "#2e7d32", 1: "#f9a825", 2: "#ef6c00", 3: "#b71c1c"}
DEJAVU = Path("/usr/share/fonts/truetype/dejavu")
FONT, BOLD = "LusSans", "LusSans-Bold"
STATUS_WORDS = {"draft": "draft (not signed)", "reviewed": "reviewed (signed)",
                "amended": "amended (read again after the sign-off, not signed since)"}


def _fonts() -> None:
    from reportlab.pdfbase import pdfmetrics  # lazy: reportlab only when a PDF is made
    from reportlab.pdfbase.ttfonts import TTFont  # lazy: reportlab only for a report

    if FONT in pdfmetrics.getRegisteredFontNames():
        return
    regular, bold = DEJAVU / "DejaVuSans.ttf", DEJAVU / "DejaVuSans-Bold.ttf"
    if not (regular.exists() and bold.exists()):
        regular, bold = Path("Vera.ttf"), Path("VeraBd.ttf")  # shipped with reportlab
    pdfmetrics.registerFont(TTFont(FONT, str(regular)))
    pdfmetrics.registerFont(TTFont(BOLD, str(bold)))


def _styles() -> dict[str, Any]:
    from reportlab.lib.styles import ParagraphStyle  # lazy: reportlab only when a PDF is made

    body = ParagraphStyle("body", fontName=FONT, fontSize=8.5, leading=11)
    return {"body": body, "h1": ParagraphStyle("h1", parent=body, fontName=BOLD, fontSize=14, leading=18),
            "h2": ParagraphStyle("h2", parent=body, fontName=BOLD, fontSize=10, leading=13, spaceBefore=5),
            "small": ParagraphStyle("small", parent=body, fontSize=7.5, leading=9.5)}


# Panels of the diagram (x of the right and left columns, width of a cell), as on the exam page.
PANELS = {"anterior": ((35, 115), 70), "lateral": ((250, 380), 60), "posterior": ((585, 505), 70)}
LEVELS = {"upper": 40, "middle": 98, "lower": 156}


def _cell(drawing: Any, line: ZoneLine) -> None:
    from reportlab.graphics.shapes import Rect, String  # lazy: reportlab only when a PDF is made
    from reportlab.lib import colors  # lazy: reportlab only for a report

    (right_x, left_x), width = PANELS[line.zone.region]
    x, top = (right_x if line.zone.side == "right" else left_x), LEVELS[line.zone.level]
    y = 250 - top - 52
    fill = colors.HexColor(COLOURS[line.score]) if line.score is not None else colors.white
    ink = colors.white if line.score in (0, 2, 3) else colors.HexColor("#1b1b1b")
    dashed = line.source == "ai"
    drawing.add(Rect(x, y, width, 52, rx=5, ry=5, fillColor=fill, strokeColor=colors.black,
                     strokeWidth=1.6 if dashed else 0.8, strokeDashArray=[4, 3] if dashed else None))
    drawing.add(String(x + width / 2, y + 34, line.zone.code, fontName=BOLD, fontSize=10, fillColor=ink,
                       textAnchor="middle"))
    value = str(line.score) if line.score is not None else ("?" if line.has_clip else "-")
    word = {"ai": " AI", "clinician": ""}.get(line.source or "", "")
    drawing.add(String(x + width / 2, y + 14, value + word, fontName=FONT, fontSize=11, fillColor=ink,
                       textAnchor="middle"))


def _diagram(report: ExamReport, scale: float) -> Any:
    from reportlab.graphics.shapes import Drawing, Group, Rect, String  # lazy: reportlab only for a PDF
    from reportlab.lib import colors  # lazy: reportlab only for a report

    inner = Drawing(690, 250)
    for x, w, title in ((20, 180, "Front (anterior)"), (245, 70, "Right side"), (375, 70, "Left side"),
                        (490, 180, "Back (posterior)")):
        inner.add(Rect(x, 30, w, 192, rx=24, ry=24, fillColor=colors.HexColor("#f4f6f8"),
                       strokeColor=colors.HexColor("#8a96a3")))
        inner.add(String(x + w / 2, 236, title, fontName=FONT, fontSize=10, textAnchor="middle"))
    for x, text in ((70, "patient's right"), (150, "left"), (540, "patient's left"), (620, "right")):
        inner.add(String(x, 14, text, fontName=FONT, fontSize=9, textAnchor="middle"))
    for line in report.zones:
        _cell(inner, line)
    group = Group(*inner.contents)
    group.scale(scale, scale)
    drawing = Drawing(690 * scale, 250 * scale)
    drawing.add(group)
    return drawing


def _num(value: float | None, digits: int = 0, unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}{(' ' + unit) if unit else ''}"


def _gas_text(gas: Gas | None) -> str:
    if gas is None:
        return "No blood gas at or before this exam."
    fio2 = f"{gas.fio2:.2f} ({gas.fio2 * 100:.0f} %)" if gas.fio2 is not None else "-"
    return (f"Sampled {escape(gas.when)} ({gas.hours_before:.1f} h before the exam): "
            f"PaO2 {_num(gas.pao2_mmhg, 1, 'mmHg')} ({_num(Gas.kpa(gas.pao2_mmhg), 1, 'kPa')}) · "
            f"PaCO2 {_num(gas.paco2_mmhg, 1, 'mmHg')} ({_num(Gas.kpa(gas.paco2_mmhg), 1, 'kPa')}) · "
            f"P/F {_num(gas.pf_ratio, 0, 'mmHg')} · pH {_num(gas.ph, 2)} · FiO2 {fio2}")


def _patient_lines(report: ExamReport) -> list[str]:
    if report.identifying:
        who = (f"<b>Patient:</b> {escape(report.patient_name or '-')} · hospital number "
               f"{escape(report.hospital_number or '-')} · code {escape(report.patient_code)}")
    else:
        who = f"<b>Patient:</b> code {escape(report.patient_code)} (pseudonym; identity not shown to researchers)"
    exam = report.exam
    device = " · ".join(escape(v) for v in (exam.device, exam.probe) if v)
    return [who, f"<b>Exam:</b> {escape(report.when)} · protocol {escape(report.protocol_name)}"
                 + (f" · {device}" if device else "") + f" · study {escape(report.study.name)}"]


def _summary_text(report: ExamReport) -> str:
    s = report.summary
    if s.luss is None:
        return "<b>Score of record:</b> no zone scored yet."
    return (f"<b>LUSS (sum of record scores): {s.luss} / {s.max_luss}</b> · mean zone score {s.mean:.2f} · "
            f"worst zone {s.worst_zone} ({s.worst_score}) · {s.clinician_zones} of {s.scored} scored zones read by "
            f"a clinician, {len(s.ai_zones)} {AI_NOT_REVIEWED}")


def _zone_table(report: ExamReport, styles: dict[str, Any]) -> Any:
    from reportlab.lib import colors  # lazy: reportlab only when a PDF is made
    from reportlab.platypus import Paragraph, Table, TableStyle  # lazy: reportlab only for a report

    since = f"previous exam ({report.previous_when})" if report.previous_when else "previous exam (none)"
    head = ["Zone", "Site", "Record score", "Source of the record score", "AI score", "Previous", "Change"]
    rows: list[list[Any]] = [head]
    for z in report.zones:
        change = "-" if z.change is None else f"{z.change:+d}"
        rows.append([z.zone.code, z.zone.label, "-" if z.score is None else str(z.score),
                     Paragraph(escape(z.source_text), styles["small"]),
                     "-" if z.ai_score is None else str(z.ai_score), "-" if z.previous is None else str(z.previous),
                     change])
    table = Table(rows, colWidths=[30, 100, 60, 180, 44, 48, 42], repeatRows=1)
    table.setStyle(TableStyle([
        ("FONT", (0, 0), (-1, -1), FONT, 7.5), ("FONT", (0, 0), (-1, 0), BOLD, 7.5),
        ("GRID", (0, 0), (-1, -1), 0.3, colors.HexColor("#b0b8c0")), ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8ecf0")),
        ("TOPPADDING", (0, 0), (-1, -1), 1), ("BOTTOMPADDING", (0, 0), (-1, -1), 1)]))
    return [Paragraph(f"Zones · change since the {escape(since)}, record scores at the same site", styles["h2"]),
            table]


def _review_text(report: ExamReport) -> str:
    review = report.review
    text = f"<b>Review:</b> {STATUS_WORDS.get(review.status, review.status)}"
    if review.signed_by:
        text += f" · signed off by {escape(review.signed_by)} at {escape(report.signed_when or '-')}"
    return text


def _ai_text(report: ExamReport) -> str:
    s = report.summary
    models = ", ".join(report.models) or "none"
    ai_zones = ", ".join(s.ai_zones) or "none"
    return (f"<b>The AI's part:</b> the AI is the first reader: it drafts a score for each zone; a clinician's "
            f"reading of a zone is its score of record and replaces the AI's draft. Zones whose score is still "
            f"the AI's ({AI_NOT_REVIEWED}): {escape(ai_zones)}. Model version(s) of the AI readings: "
            f"{escape(models)}.")


def exam_pdf(report: ExamReport) -> bytes:
    """The report as PDF bytes (one A4 page)."""
    from reportlab.lib.pagesizes import A4  # lazy: reportlab only when a PDF is made
    from reportlab.platypus import Paragraph, SimpleDocTemplate  # lazy: reportlab only for a report

    _fonts()
    styles = _styles()
    out = io.BytesIO()
    doc = SimpleDocTemplate(out, pagesize=A4, leftMargin=36, rightMargin=36, topMargin=30, bottomMargin=28,
                            title=f"LUS exam report {report.patient_code}", author="LUSWeb")
    story: list[Any] = [Paragraph("Lung ultrasound exam report", styles["h1"])]
    story += [Paragraph(line, styles["body"]) for line in _patient_lines(report)]
    story += [Paragraph(_summary_text(report), styles["body"]),
              Paragraph("Chest diagram: score of record per zone (dashed border and \"AI\": AI, not reviewed)",
                        styles["h2"]), _diagram(report, 0.74)]
    story += _zone_table(report, styles)
    story += [Paragraph("Blood gas (latest at or before the exam)", styles["h2"]),
              Paragraph(_gas_text(report.gas), styles["body"]), Paragraph("Sign-off and the AI", styles["h2"]),
              Paragraph(_review_text(report), styles["body"]), Paragraph(_ai_text(report), styles["body"]),
              Paragraph(f"Made by LUSWeb for {escape(report.made_by or '-')} at "
                        f"{report.made_at:%Y-%m-%d %H:%M} UTC. Every score above states its source.", styles["small"])]
    doc.build(story)
    return out.getvalue()
