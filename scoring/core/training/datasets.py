"""Labelled LUS data sets (COVID-BLUES, POCUS), read in place (never copied into the repository).

The decoded and preprocessed frames and the features of these clips are cached by
:mod:`scoring.core.training.caches`.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from patients.imaging.core.reader import read_clip
from scoring.core.labels import FINDINGS

#: Where the labelled data sets live beside a checkout (``../shared/data``).
DEFAULT_DATA = Path(__file__).resolve().parents[4] / "shared" / "data"

#: -1 marks an unknown finding (masked out of the loss).
UNKNOWN = -1


@dataclass
class ClipRecord:
    """One labelled clip."""

    path: str
    patient: str
    source: str  # "covid-blues" | "pocus" | "phantom"
    score: int  # 0..3, or -1 when unscored
    findings: dict[str, int] = field(default_factory=dict)  # name -> 0/1/-1
    zone: str = ""

    @property
    def name(self) -> str:
        """File stem."""
        return Path(self.path).stem

    def findings_vector(self) -> np.ndarray:
        """int8 vector in FINDINGS order (-1 unknown)."""
        return np.array([self.findings.get(f, UNKNOWN) for f in FINDINGS], np.int8)


def _yes(v: str) -> int:
    v = (v or "").strip().lower()
    if v in {"yes", "1", "true"}:
        return 1
    if v in {"no", "0", "false"}:
        return 0
    return UNKNOWN


def covid_blues_records(root: str | Path) -> list[ClipRecord]:
    """Index ``covid-blues/`` (``severity.csv`` + ``lus_videos/``).

    Findings: A-/B-lines from the CSV columns for every clip. The rarer findings come from the
    free-text comment where it names them, otherwise from what the Soldati definition of the
    clip's score implies (weak labels; without negatives a findings head learns "always yes"):

    * pleural_irregularity: 0 for score 0 (continuous regular pleura), 1 for scores >= 1
      (indented / broken pleura); "pleura line intact" in the comment -> 0;
    * confluent_b_lines: 1 for score 3 (dense white lung) or a comment naming white lung /
      fused / confluent B-lines, 0 for scores 0-1, unknown for score 2;
    * consolidation: 1 when the comment names consolidations, 0 for scores 0-1 (Soldati
      consolidations start at score 2), otherwise unknown;
    * effusion: 1 when the comment names an effusion, else 0 (an expert notes an effusion).
    """
    root = Path(root)
    out: list[ClipRecord] = []
    with open(root / "severity.csv", newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            stem = row["video_file"].strip()
            p = root / "lus_videos" / f"{stem}.mp4"
            if not p.exists():
                continue
            m = re.match(r"patient_(\d+)_([LR]\d)", stem)
            patient = f"cb{m.group(1)}" if m else stem
            zone = m.group(2) if m else ""
            c = (row.get("comments") or "").lower()
            f = dict.fromkeys(FINDINGS, UNKNOWN)
            score = int(float(row["Severity Score"]))
            f["a_lines"] = _yes(row.get("A-lines", ""))
            f["b_lines"] = _yes(row.get("B-lines", ""))
            f["pleural_irregularity"] = 1 if score >= 1 else 0
            if any(w in c for w in ("broken pleura", "interrupted pleura", "thickened pleura")):
                f["pleural_irregularity"] = 1
            if "pleura line intact" in c:
                f["pleural_irregularity"] = 0
            f["confluent_b_lines"] = 1 if score == 3 else (0 if score <= 1 else UNKNOWN)
            if "white lung" in c or "fused" in c or "confluent" in c:
                f["confluent_b_lines"] = 1
            f["consolidation"] = 0 if score <= 1 else UNKNOWN
            if "consolidat" in c:
                f["consolidation"] = 1
            f["effusion"] = 1 if "effusion" in c else 0
            out.append(ClipRecord(str(p), patient, "covid-blues", score, f, zone))
    return out


def pocus_records(root: str | Path, scored_only: bool = False) -> list[ClipRecord]:
    """Index ``pocus/`` via ``dataset_metadata.csv`` (file stem == ``Filename``)."""
    root = Path(root)
    with open(root / "dataset_metadata.csv", newline="", encoding="utf-8", errors="replace") as fh:
        meta = {r["Filename"]: r for r in csv.DictReader(fh)}
    out: list[ClipRecord] = []
    for p in sorted(root.glob("pocus_*/*/*")):
        if not p.is_file():
            continue
        r = meta.get(p.stem)
        if r is None:
            continue
        s = (r.get("Lung Severity Score") or "").strip()
        score = int(s) if s.isdigit() else -1
        if scored_only and score < 0:
            continue
        text = " ".join(r.get(k) or "" for k in ("Comments first medical doctor (MD1)", "Filename",
                                                  "URL (Video Name)")).lower()
        f = {
            "a_lines": _yes(r.get("A-lines", "")),
            "b_lines": _yes(r.get("B-lines", "")),
            "confluent_b_lines": 1 if ("confluent" in text or "coalesc" in text or "white lung" in text)
            else UNKNOWN,
            "consolidation": _yes(r.get("Consolidations", "")),
            "pleural_irregularity": _yes(r.get("Pleural line irregularities", "")),
            "effusion": _yes(r.get("Effusion", "")),
        }
        pid = (r.get("Patient ID / Name") or "").strip()
        patient = f"pocus_{pid}" if pid else f"pocus_{p.stem}"
        out.append(ClipRecord(str(p), patient, "pocus", score, f))
    return out


def decode_frames(path: str | Path) -> tuple[np.ndarray, float]:
    """Decode any clip or image the platform reads (:func:`patients.imaging.core.reader.read_clip`:
    DICOM, videos, images) to uint8 grey [T,H,W] and its fps (0.0 when unknown)."""
    clip = read_clip(str(path))
    return np.asarray(clip.frames), float(clip.fps or 0.0)
