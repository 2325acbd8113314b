"""A phantom from a spec: sector geometry, beam rendering, scan conversion, burned-in text."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from patients.imaging.core.phantoms.beam import render_beam
from patients.imaging.core.phantoms.plan import frame_truth, make_plan
from patients.imaging.core.phantoms.spec import FINDINGS, Geometry, PhantomClip, PhantomSpec


@dataclass(frozen=True)
class _Sector:
    mask: np.ndarray
    depth: np.ndarray  # [H, W] float32, NaN outside
    lateral: np.ndarray
    region: tuple[int, int, int, int]  # bounding box x0, y0, x1, y1 (inclusive)
    depth_cm: float


def _sector(geometry: Geometry, rows: int, columns: int) -> _Sector:
    """Pixel -> (depth, lateral) fractions for a convex fan or a linear rectangle."""
    y, x = np.mgrid[0:rows, 0:columns].astype(np.float32)
    if geometry == "convex":
        # Apex above the image; the fan fills the height and (at its bottom) nearly the width,
        # leaving the top corners free for annotations as on a real scanner.
        top, bottom = 0.05 * rows, 0.97 * rows
        r0 = 0.3 * rows
        r1 = r0 + (bottom - top)
        half = min(math.asin(min(0.48 * columns / r1, 1.0)), math.radians(35))
        cx, cy = (columns - 1) / 2.0, top - r0
        r = np.hypot(x - cx, y - cy)
        theta = np.arctan2(x - cx, y - cy)
        depth = (r - r0) / (r1 - r0)
        lateral = (theta + half) / (2 * half)
        depth_cm = 14.0
    else:
        x0, x1, y0, y1 = 0.1 * columns, 0.9 * columns, 0.05 * rows, 0.97 * rows
        depth = (y - y0) / (y1 - y0)
        lateral = (x - x0) / (x1 - x0)
        depth_cm = 6.0
    mask = (depth >= 0) & (depth <= 1) & (lateral >= 0) & (lateral <= 1)
    depth = np.where(mask, depth, np.nan).astype(np.float32)
    lateral = np.where(mask, lateral, np.nan).astype(np.float32)
    ys, xs = np.nonzero(mask)
    region = (int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max()))
    return _Sector(mask=mask, depth=depth, lateral=lateral, region=region, depth_cm=depth_cm)


def _scan_convert(beam: np.ndarray, sector: _Sector) -> np.ndarray:
    """Nearest-neighbour lookup of every sector pixel in the beam grid, black outside."""
    t, nd, nl = beam.shape
    rows, cols = sector.mask.shape
    inside = np.flatnonzero(sector.mask)
    di = np.rint(sector.depth.ravel()[inside] * (nd - 1)).astype(np.intp)
    li = np.rint(sector.lateral.ravel()[inside] * (nl - 1)).astype(np.intp)
    values = beam.reshape(t, -1)[:, di * nl + li]
    # Display mapping with mild log-like compression so speckle and artefacts both stay visible
    # (in place: this runs over every pixel of every frame).
    np.maximum(values, 0, out=values)
    np.sqrt(values, out=values)
    values *= 200.0
    np.minimum(values, 255, out=values)
    out = np.zeros((t, rows * cols), dtype=np.uint8)
    out[:, inside] = values.astype(np.uint8)
    return out.reshape(t, rows, cols)


def _annotation_mask(spec: PhantomSpec, sector: _Sector) -> np.ndarray:
    """Burned-in text, depth ruler and a logo, clipped to outside the sector."""
    from PIL import Image, ImageDraw, ImageFont  # lazy: Pillow only for burned-in text

    rows, cols = spec.rows, spec.columns
    overlay = Image.new("L", (cols, rows), 0)
    draw = ImageDraw.Draw(overlay)
    size = max(8, rows // 26)
    try:
        font: Any = ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: bitmap default font only
        font = ImageFont.load_default()
    probe = "C5-2" if spec.geometry == "convex" else "L12-4"
    draw.text((2, 1), "LUSWeb", fill=255, font=font)
    draw.text((2, 1 + size), probe, fill=255, font=font)
    draw.text((cols - 5 * size, 1), f"{spec.fps:g}Hz", fill=255, font=font)
    draw.text((cols - 5 * size, 1 + size), f"{sector.depth_cm:g}cm", fill=255, font=font)
    draw.ellipse((2, rows - 3 * size, 2 + 2 * size, rows - size - 1), outline=255, width=2)  # logo
    x0, y0, x1, y1 = sector.region
    for k in range(int(sector.depth_cm) + 1):  # ruler: a tick per cm on the right edge
        y = y0 + (y1 - y0) * k / sector.depth_cm
        draw.line((cols - (5 if k % 5 else 9), y, cols - 1, y), fill=200)
    mask = np.asarray(overlay) > 0
    return mask & ~sector.mask


def render_phantom(spec: PhantomSpec) -> PhantomClip:
    """Render a phantom cine loop and its per-frame ground truth (deterministic in ``spec.seed``)."""
    rng = np.random.default_rng(spec.seed)
    sector = _sector(spec.geometry, spec.rows, spec.columns)
    plan = make_plan(spec, rng)
    scores, findings, b_u = frame_truth(spec, plan)
    # Lateral beam density of half the pixel columns: US lateral resolution is coarser than
    # axial anyway (speckle comes out laterally elongated, as on a scanner) and it halves the cost.
    nd, nl = spec.rows, max(64, spec.columns // 2)
    frames = _scan_convert(render_beam(spec, plan, rng, nd, nl), sector)
    text = _annotation_mask(spec, sector) if spec.burned_in_text else np.zeros_like(sector.mask)
    if text.any():
        frames[:, text] = 230
    return PhantomClip(
        spec=spec, frames=frames, frame_scores=scores, frame_findings=findings, sector_mask=sector.mask,
        depth_map=sector.depth, lateral_map=sector.lateral, pleura_depth=plan.pleura,
        lung_top=plan.pleura + plan.effusion_depth, b_lines_u=b_u, text_mask=text,
        meta={"region": sector.region, "depth_cm": sector.depth_cm, "consolidation": plan.consolidation},
    )


def phantom_cohort_clip(score: int, seed: int, geometry: Geometry = "convex", n_frames: int = 40, *,
                        rows: int = 256, columns: int = 256, fps: float = 25.0,
                        burned_in_text: bool = True) -> PhantomClip:
    """A phantom whose findings are typical of ``score`` (seeded choice among plausible mixes)."""
    rng = np.random.default_rng([seed, 7919])
    flags: dict[str, bool] = dict.fromkeys(FINDINGS, False)
    if score == 0:
        flags["a_lines"] = True
    elif score == 1:
        flags.update(a_lines=True, b_lines=True, pleural_irregularity=bool(rng.random() < 0.5))
    elif score == 2:
        if rng.random() < 0.5:
            flags.update(b_lines=True, confluent_b_lines=True, pleural_irregularity=True)
        else:
            flags.update(b_lines=True, consolidation=True, pleural_irregularity=bool(rng.random() < 0.5))
    elif score == 3:
        if rng.random() < 0.5:
            flags.update(confluent_b_lines=True, pleural_irregularity=True)
        else:
            flags.update(consolidation=True, pleural_irregularity=True)
        flags["effusion"] = bool(rng.random() < 0.3)
    else:
        raise ValueError(f"score must be 0..3, not {score}")
    spec = PhantomSpec(geometry=geometry, score=score, n_frames=n_frames, fps=fps, rows=rows, columns=columns,
                       seed=seed, burned_in_text=burned_in_text, **flags)
    return render_phantom(spec)
