"""Labelled LUS data sets (COVID-BLUES, POCUS) and the on-disk frame cache.

The data are read in place (never copied into the repository). Decoded and preprocessed
frames are cached as uint8 ``.npy`` under ``~/.cache/lusweb/frames/`` keyed by the file's
path, size and mtime and by the preprocessing parameters, so experiments are cheap.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from scoring.core.nets import FINDINGS
from scoring.core.preprocess import PreprocessConfig, apply_geometry, geometry_for, preprocess_clip, to_grey

CACHE_ROOT = Path(os.environ.get("LUSWEB_CACHE", Path.home() / ".cache" / "lusweb"))
IMAGE_EXT = {".jpg", ".jpeg", ".png", ".bmp"}

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
    """Decode any clip or image to uint8 grey [T,H,W] and its fps.

    Uses ``patients.imaging.core.reader.read_clip`` when that module is present (it handles DICOM
    and the project's formats), with PyAV / Pillow as the fallback.
    """
    try:
        from patients.imaging.core.reader import read_clip

        clip = read_clip(str(path))
        return np.asarray(clip.frames), float(getattr(clip, "fps", 0.0) or 0.0)
    except ImportError:
        pass
    p = Path(path)
    if p.suffix.lower() in IMAGE_EXT:
        from PIL import Image

        with Image.open(p) as im:
            return np.asarray(im.convert("L"))[None], 0.0
    import av

    with av.open(str(p)) as c:
        st = c.streams.video[0]
        fps = float(st.average_rate or 0)
        frames = [f.to_ndarray(format="gray") for f in c.decode(st)]
    return np.stack(frames), fps


def _key(path: str | Path, cfg: PreprocessConfig, extra: str = "") -> str:
    st = os.stat(path)
    raw = json.dumps([str(Path(path).resolve()), st.st_size, int(st.st_mtime), cfg.to_dict(), extra])
    return hashlib.sha1(raw.encode()).hexdigest()[:20]


def _cache_file(path: str | Path, cfg: PreprocessConfig, max_frames: int) -> Path:
    d = CACHE_ROOT / "frames"
    d.mkdir(parents=True, exist_ok=True)
    return d / f"{_key(path, cfg, str(max_frames))}.npy"


def _decode_subsampled(path: str | Path, max_frames: int) -> np.ndarray:
    raw, _ = decode_frames(path)
    if max_frames and raw.shape[0] > max_frames:
        raw = raw[np.linspace(0, raw.shape[0] - 1, max_frames).round().astype(int)]
    return raw


def _save(f: Path, u8: np.ndarray) -> None:
    tmp = f.with_suffix(".tmp.npy")
    np.save(tmp, u8)
    os.replace(tmp, f)  # a concurrent reader never sees half a file


def cached_frames(path: str | Path, cfg: PreprocessConfig, max_frames: int = 0) -> np.ndarray:
    """Preprocessed frames as uint8 [T,size,size] (from the cache or computed and cached).

    ``max_frames`` > 0 subsamples long clips uniformly (POCUS has clips of 1000+ frames).
    """
    f = _cache_file(path, cfg, max_frames)
    if f.exists():
        return np.load(f)
    x, _ = preprocess_clip(_decode_subsampled(path, max_frames), cfg)
    u8 = np.round(x * 255).astype(np.uint8)
    _save(f, u8)
    return u8


def cached_views(path: str | Path, cfg: PreprocessConfig, hires_size: int,
                 max_frames: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """:func:`cached_frames` on ``cfg.size`` and on a ``hires_size`` canvas, decoding the clip and
    finding its sector once for both (the sector does not depend on the canvas size).

    The two arrays are exactly what two :func:`cached_frames` calls return, and share their
    cache files.
    """
    hcfg = PreprocessConfig(**{**cfg.to_dict(), "size": hires_size})  # type: ignore[arg-type]
    files = (_cache_file(path, cfg, max_frames), _cache_file(path, hcfg, max_frames))
    if all(f.exists() for f in files):
        return np.load(files[0]), np.load(files[1])
    grey = to_grey(_decode_subsampled(path, max_frames))
    # As preprocess.model_input_views: the small view is the full pipeline, the large one
    # reuses its sector mask.
    x, geom = preprocess_clip(grey, cfg)
    xh = apply_geometry(grey, geometry_for(geom.mask, hires_size))
    out = []
    for f, v in zip(files, (x, xh), strict=True):
        u8 = np.round(v * 255).astype(np.uint8)
        _save(f, u8)
        out.append(u8)
    return out[0], out[1]
