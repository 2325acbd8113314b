"""Synthetic lung-ultrasound cine loops with known ground truth, for tests and the demo.

Pure numpy (+ Pillow for burned-in text, pydicom / PyAV for the writers); no Django import.

The image is rendered in *beam space* (depth fraction ``d`` x lateral fraction ``u``, both
0..1) and then scan-converted once per clip through a precomputed pixel -> beam lookup, so a
convex fan and a linear rectangle share every finding. Physics-ish, not physics: enough of each
LUS sign (Soldati et al. 2020 score) for a detector and a human to recognise it.

Scoring ground truth
--------------------
Every frame carries its own score, computed from the findings *visible in that frame*:

* 0: continuous pleural line, A-lines (reverberations at multiples of the pleural depth)
* 1: indented / irregular pleural line or separate B-lines
* 2: broken pleural line, subpleural consolidation or partly confluent B-lines
  (white lung over less than half the sector width)
* 3: white lung over at least half the width (dense confluent B-lines) or a lobar
  consolidation with air bronchograms

Pleural effusion does not change the score (it is not part of the lung-aeration score).
Intermittent B-lines (entering the sector only during part of the respiratory cycle) make the
score vary within a clip; the clip's label :attr:`PhantomClip.clip_score` is the **maximum**
frame score, matching how clinicians score a zone by its worst visible finding.
"""
from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Literal

import numpy as np

Geometry = Literal["convex", "linear"]
FINDINGS = ("a_lines", "b_lines", "confluent_b_lines", "consolidation", "pleural_irregularity", "effusion")

US_MULTIFRAME_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.3.1"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
MANUFACTURER = "LUSWeb Phantom"


@dataclass(frozen=True)
class PhantomSpec:
    """What to render. ``score`` is the target Soldati score (0..3); it picks the variant of a
    finding (e.g. subpleural vs lobar consolidation, extent of white lung). The rendered frame
    scores follow from the findings actually drawn, so a spec whose flags disagree with its score
    still gets truthful per-frame labels."""

    geometry: Geometry = "convex"
    score: int = 0
    a_lines: bool = True
    b_lines: bool = False
    confluent_b_lines: bool = False
    consolidation: bool = False
    pleural_irregularity: bool = False
    effusion: bool = False
    n_frames: int = 60
    fps: float = 25.0
    rows: int = 256
    columns: int = 256
    seed: int = 0
    burned_in_text: bool = True

    def __post_init__(self) -> None:
        if self.geometry not in ("convex", "linear"):
            raise ValueError(f"geometry must be 'convex' or 'linear', not {self.geometry!r}")
        if not 0 <= self.score <= 3:
            raise ValueError(f"score must be 0..3, not {self.score}")
        if self.n_frames < 1 or self.rows < 32 or self.columns < 32 or self.fps <= 0:
            raise ValueError("need n_frames >= 1, rows and columns >= 32 and fps > 0")


@dataclass(frozen=True)
class PhantomClip:
    """A rendered phantom and its ground truth.

    ``depth_map`` / ``lateral_map`` give each pixel's beam coordinates (fractions 0..1, NaN
    outside the sector); ``lung_top`` is the depth fraction of the lung surface (visceral pleura)
    and ``b_lines_u`` the lateral fraction of each discrete B-line per frame (NaN when not
    visible) so tests can locate findings in pixels.
    """

    spec: PhantomSpec
    frames: np.ndarray  # uint8 [T, H, W]
    frame_scores: np.ndarray  # int [T]
    frame_findings: dict[str, np.ndarray]  # name -> bool [T]
    sector_mask: np.ndarray  # bool [H, W]
    depth_map: np.ndarray  # float32 [H, W]
    lateral_map: np.ndarray  # float32 [H, W]
    pleura_depth: float
    lung_top: float
    b_lines_u: np.ndarray  # float [T, n_b_lines]
    text_mask: np.ndarray  # bool [H, W]: burned-in annotation pixels
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def clip_score(self) -> int:
        """The clip label: the maximum frame score (worst finding visible in the loop)."""
        return int(self.frame_scores.max())

    @property
    def fps(self) -> float:
        return float(self.spec.fps)


# --- geometry ------------------------------------------------------------------------------


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


# --- findings plan -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    """Random but seed-determined parameters of every finding."""

    pleura: float
    effusion_depth: float
    phase: np.ndarray  # [T] respiratory phase, radians
    sliding: np.ndarray  # [T] lateral lung shift, fraction of width
    b_u0: np.ndarray  # [n] B-line rest positions
    b_visible: np.ndarray  # [T, n] bool
    confluent: tuple[float, float] | None  # centre, half-width at rest
    consolidation: Literal["subpleural", "lobar"] | None
    cons_u: float


def _plan(spec: PhantomSpec, rng: np.random.Generator) -> _Plan:
    t = np.arange(spec.n_frames) / spec.fps
    # At least one full breath in the loop, within a plausible 15..40 breaths/min.
    period = float(np.clip(spec.n_frames / spec.fps, 1.5, 4.0))
    phase = 2 * np.pi * t / period + rng.uniform(0, 2 * np.pi)
    sliding = 0.025 * np.sin(phase)
    pleura = float(rng.uniform(0.17, 0.22) if spec.geometry == "convex" else rng.uniform(0.25, 0.32))
    effusion_depth = float(rng.uniform(0.08, 0.14)) if spec.effusion else 0.0

    n_b = 0
    if spec.b_lines:
        n_b = int(rng.integers(1, 3)) if spec.score <= 1 else int(rng.integers(3, 6))
    b_u0 = np.sort(rng.uniform(0.15, 0.85, size=n_b))
    if n_b > 1:  # keep them separate: discrete B-lines, not a confluent band
        b_u0 = np.linspace(0.2, 0.8, n_b) + rng.uniform(-0.04, 0.04, size=n_b)
    b_visible = np.ones((spec.n_frames, n_b), dtype=bool)
    if spec.score <= 1 and n_b and spec.n_frames >= 4:
        # Score-1 B-lines come and go with the breath: visible for ~60 % of the cycle.
        # Close phases: the lines enter together at inspiration, so the loop has B-line-free frames.
        offsets = rng.uniform(-0.4, 0.4, size=n_b)
        b_visible = np.sin(phase[:, None] + offsets[None, :]) > -0.3
        b_visible[spec.n_frames // 2, 0] = True  # guarantee the finding shows at least once ...
        if b_visible.any(axis=1).all():
            b_visible[0, :] = False  # ... and that it is intermittent (n_frames >= 4: frame 0 is not the middle)

    confluent = None
    if spec.confluent_b_lines:
        half = rng.uniform(0.3, 0.4) if spec.score >= 3 else rng.uniform(0.1, 0.17)
        confluent = (float(rng.uniform(0.5 - (0.5 - half) * 0.6, 0.5 + (0.5 - half) * 0.6)), float(half))
    consolidation: Literal["subpleural", "lobar"] | None = None
    if spec.consolidation:
        consolidation = "lobar" if spec.score >= 3 else "subpleural"
    return _Plan(pleura=pleura, effusion_depth=effusion_depth, phase=phase, sliding=sliding, b_u0=b_u0,
                 b_visible=b_visible, confluent=confluent, consolidation=consolidation,
                 cons_u=float(rng.uniform(0.3, 0.7)))


def _frame_truth(spec: PhantomSpec, plan: _Plan) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """Per-frame findings and scores, from what the renderer draws."""
    n = spec.n_frames
    b_u = plan.b_u0[None, :] + plan.sliding[:, None]
    b_u = np.where(plan.b_visible, b_u, np.nan)
    any_b = np.asarray(plan.b_visible.any(axis=1)) if plan.b_visible.size else np.zeros(n, dtype=bool)
    coverage = np.zeros(n)
    if plan.confluent is not None:
        coverage[:] = min(1.0, 2 * plan.confluent[1])
    findings: dict[str, np.ndarray] = {
        "a_lines": np.full(n, spec.a_lines and coverage.max(initial=0) < 0.5 and plan.consolidation != "lobar"),
        "b_lines": any_b,
        "confluent_b_lines": coverage > 0,
        "consolidation": np.full(n, plan.consolidation is not None),
        "pleural_irregularity": np.full(n, spec.pleural_irregularity),
        "effusion": np.full(n, spec.effusion),
    }
    scores = np.zeros(n, dtype=np.int64)
    scores[findings["b_lines"] | findings["pleural_irregularity"]] = 1
    broken = spec.pleural_irregularity and spec.score >= 2
    scores[np.full(n, broken) | ((coverage > 0) & (coverage < 0.5))] = 2
    if plan.consolidation == "subpleural":
        scores = np.maximum(scores, 2)
    scores[coverage >= 0.5] = 3
    if plan.consolidation == "lobar":
        scores[:] = 3
    return scores, findings, b_u


# --- beam-space rendering ------------------------------------------------------------------


def _speckle(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Unit-mean Rayleigh speckle, slightly correlated along depth (axial pulse length)."""
    re = rng.standard_normal(shape, dtype=np.float32)
    im = rng.standard_normal(shape, dtype=np.float32)
    # Two-tap axial smoothing of the complex field: cheap stand-in for the pulse's PSF.
    re[..., 1:, :] += re[..., :-1, :] * 0.6
    im[..., 1:, :] += im[..., :-1, :] * 0.6
    env = np.sqrt(re * re + im * im)
    return env / env.mean()


def _gauss(x: np.ndarray, width: float) -> np.ndarray:
    return np.exp(-0.5 * (x / width) ** 2)


def _shift_lateral(field2d: np.ndarray, shifts_px: np.ndarray, nl: int) -> np.ndarray:
    """Stack of lateral windows of a wide static field: the lung texture sliding under the probe."""
    pad = (field2d.shape[1] - nl) // 2
    starts = np.clip(pad + np.rint(shifts_px).astype(int), 0, field2d.shape[1] - nl)
    cols = starts[:, None] + np.arange(nl)[None, :]
    return field2d[:, cols].transpose(1, 0, 2)  # [T, nd, nl]


def _pleural_profile(spec: PhantomSpec, plan: _Plan, u: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Depth offset and brightness of the pleural line along the width (irregular / broken)."""
    offset = np.zeros_like(u)
    gain = np.ones_like(u)
    if spec.pleural_irregularity:
        for _ in range(int(rng.integers(3, 6))):
            centre, width = rng.uniform(0.1, 0.9), rng.uniform(0.02, 0.06)
            offset += rng.uniform(0.008, 0.02) * _gauss(u - centre, width)  # indentations
        gain *= 0.75 + 0.5 * rng.random(u.shape).astype(np.float32)  # thickened, granular line
        if spec.score >= 2:
            for _ in range(int(rng.integers(2, 4))):  # breaks in the line
                gain *= 1 - 0.9 * (np.abs(u - rng.uniform(0.15, 0.85)) < rng.uniform(0.015, 0.035))
    if plan.consolidation == "subpleural":
        gain *= 1 - 0.7 * (np.abs(u - plan.cons_u) < 0.08)
    return offset, gain


def _air_bronchograms(rng: np.random.Generator, nd: int, nl: int, top: float) -> np.ndarray:
    """Bright branching dots: a few random-walk bronchi that fork as they go deep."""
    canvas = np.zeros((nd, nl), dtype=np.float32)
    tips = [(top + 0.05, float(rng.uniform(0.3, 0.7)), 0.0) for _ in range(int(rng.integers(2, 4)))]
    while tips:
        d, u, angle = tips.pop()
        for _ in range(int(rng.integers(8, 16))):
            d += 0.02 * math.cos(angle)
            u += 0.02 * math.sin(angle)
            angle += float(rng.normal(0, 0.25))
            if not (top < d < 0.85 and 0.12 < u < 0.88):
                break
            if rng.random() < 0.75:  # dotted, not continuous: air in the bronchi
                canvas[int(d * (nd - 1)), int(u * (nl - 1))] = rng.uniform(0.8, 1.4)
            if rng.random() < 0.1 and len(tips) < 8:
                tips.append((d, u, angle + float(rng.choice([-0.6, 0.6]))))
    # 3x3 spread so a dot survives scan conversion.
    spread = canvas.copy()
    for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        spread = np.maximum(spread, np.roll(canvas, (dy, dx), axis=(0, 1)) * 0.6)
    return spread


@dataclass
class _Layers:
    """Static beam-space maps; a frame is ``s0 + s1*S + art*(d0 + d1*S)`` with S the sliding
    lung speckle and ``art`` the per-frame B-line / white-lung lateral profile. Folding every
    static factor (attenuation, fluid, consolidation) into these four maps keeps the per-frame
    work to six array passes: the difference between ~0.2 s and ~1.5 s for 150 frames."""

    s0: np.ndarray
    s1: np.ndarray
    d0: np.ndarray
    d1: np.ndarray

    def multiply(self, factor: np.ndarray) -> None:
        for name in ("s0", "s1", "d0", "d1"):
            setattr(self, name, (getattr(self, name) * factor).astype(np.float32))


def _artefact_profile(plan: _Plan, u: np.ndarray, n: int) -> np.ndarray:
    """Per-frame lateral weight (0..1) of B-lines and white lung, float32 [T, 1, nl]."""
    art = np.zeros((n, 1, u.shape[1]), dtype=np.float32)
    if plan.b_u0.size:
        centres = plan.b_u0[None, :] + plan.sliding[:, None]  # B-lines move with the lung
        comets = _gauss(u[None, :, :] - centres[:, :, None], 0.012) * plan.b_visible[:, :, None]
        art = np.maximum(art, comets.max(axis=1, keepdims=True))
    if plan.confluent is not None:
        centre, half = plan.confluent
        edges = np.abs(u - centre - plan.sliding[:, None, None]) - half
        art = np.maximum(art, np.clip(1 - edges / 0.03, 0, 1))
    return art.astype(np.float32)


def _static_layers(spec: PhantomSpec, plan: _Plan, rng: np.random.Generator, d: np.ndarray, u: np.ndarray,
                   pleura: np.ndarray, line_gain: np.ndarray) -> _Layers:
    nd, nl = d.shape[0], u.shape[1]
    lung_top = pleura + plan.effusion_depth
    below = (d > lung_top).astype(np.float32)

    # Chest wall: layered muscle / fascia texture with its own static speckle.
    layers = 0.45 + 0.12 * np.sin(2 * np.pi * (d * 11 + 0.3 * np.sin(u * 7)))
    layers = np.where(d < 0.04, 0.2, layers)  # subcutaneous fat
    wall = layers * (d < pleura) * _speckle(rng, (nd, nl))

    # A-lines: reverberations of the pleura at integer multiples of its depth.
    alines = np.zeros((nd, nl), dtype=np.float32)
    if spec.a_lines:
        for k in range(2, 8):
            alines += 0.55 * 0.7 ** (k - 2) * _gauss(d - k * lung_top, 0.008)
        alines *= below
    # Bright, granular pleural line; B-lines hang from it and reach the bottom, barely fading.
    line = 1.4 * _gauss(d - pleura, 0.007) * line_gain[None, :]
    comet = 0.9 * below * np.clip(1.0 - 0.35 * (d - lung_top), 0.5, 1.0)
    streaks = 0.8 + 0.4 * rng.random((1, nl)).astype(np.float32)  # white lung is streaky, not flat
    layers_ = _Layers(
        s0=wall + 0.6 * alines + 0.7 * line,
        s1=0.07 * below + 0.4 * alines + 0.3 * line,
        d0=0.8 * comet * streaks - 0.6 * alines,  # artefacts replace the A-line pattern
        d1=0.3 * comet - 0.4 * alines,
    )
    if spec.effusion:
        fluid = ((d > pleura + 0.012) & (d < lung_top - 0.01)).astype(np.float32)
        layers_.multiply(1 - fluid)  # anechoic
        visceral = 1.1 * _gauss(d - lung_top, 0.006)
        layers_.s0 = layers_.s0 + 0.7 * visceral
        layers_.s1 = layers_.s1 + 0.3 * visceral
    return layers_


def _consolidation_region(plan: _Plan, d: np.ndarray, u: np.ndarray, lung_top: np.ndarray) -> np.ndarray:
    """Where the lung is hepatised: a subpleural wedge with a shredded deep edge, or a lobe."""
    if plan.consolidation == "subpleural":
        du = (u - plan.cons_u) / 0.09
        bottom = lung_top + 0.1 * np.sqrt(np.clip(1 - du**2, 0, 1)) * (1 + 0.25 * np.sin(u * 90))  # shred sign
        return ((d > lung_top) & (d < bottom) & (np.abs(du) < 1)).astype(np.float32)
    # A lobe: organic lateral margins and an irregular deep edge.
    left, right = 0.12 + 0.05 * np.sin(d * 9.0), 0.88 - 0.05 * np.sin(d * 7.0 + 1.0)
    deep = 0.8 + 0.07 * np.sin(u * 11.0)
    return ((d > lung_top + 0.005) & (d < deep) & (u > left) & (u < right)).astype(np.float32)


def _render_beam(spec: PhantomSpec, plan: _Plan, rng: np.random.Generator, nd: int, nl: int) -> np.ndarray:
    """Echo amplitude in beam space, float32 [T, nd, nl]."""
    n = spec.n_frames
    d = np.linspace(0, 1, nd, dtype=np.float32)[:, None]
    u = np.linspace(0, 1, nl, dtype=np.float32)[None, :]
    shift_px = plan.sliding * nl
    offset, line_gain = _pleural_profile(spec, plan, u[0], rng)
    pleura = plan.pleura + offset[None, :]
    lung_top = pleura + plan.effusion_depth

    layers = _static_layers(spec, plan, rng, d, u, pleura, line_gain)
    region = None
    if plan.consolidation is not None:
        region = _consolidation_region(plan, d, u, lung_top)
        layers.multiply(1 - region)
        layers.s0 = layers.s0 + 0.45 * 0.4 * region  # tissue-like echo texture
        layers.s1 = layers.s1 + 0.45 * 0.6 * region
    # Depth attenuation partly undone by time-gain compensation, as a scanner preset would.
    layers.multiply(np.exp(-0.5 * d) * (0.85 + 0.15 * np.clip(d / 0.1, 0, 1)))

    # The lung (and everything drawn in it) slides laterally with the breath: lung sliding.
    speckle = _shift_lateral(_speckle(rng, (nd, nl + int(0.1 * nl) + 2)), shift_px, nl)
    frames = speckle * layers.s1
    frames += layers.s0
    if plan.b_u0.size or plan.confluent is not None:
        extra = speckle * layers.d1
        extra += layers.d0
        extra *= _artefact_profile(plan, u, n)
        frames += extra
    if plan.consolidation == "lobar" and region is not None:
        dots = _air_bronchograms(rng, nd, nl, float(np.mean(lung_top)))
        wide = np.pad(dots * region, ((0, 0), (nl // 20 + 1, nl // 20 + 1)))
        frames += _shift_lateral(wide, shift_px, nl)  # dynamic air bronchograms
    return frames


# --- scan conversion and annotations -------------------------------------------------------


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
    from PIL import Image, ImageDraw, ImageFont

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
    plan = _plan(spec, rng)
    scores, findings, b_u = _frame_truth(spec, plan)
    # Lateral beam density of half the pixel columns: US lateral resolution is coarser than
    # axial anyway (speckle comes out laterally elongated, as on a scanner) and it halves the cost.
    nd, nl = spec.rows, max(64, spec.columns // 2)
    frames = _scan_convert(_render_beam(spec, plan, rng, nd, nl), sector)
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


# --- writers -------------------------------------------------------------------------------


def _us_region_item(phantom: PhantomClip) -> Any:
    from pydicom.dataset import Dataset

    x0, y0, x1, y1 = phantom.meta["region"]
    cm_per_px = phantom.meta["depth_cm"] / max(1, y1 - y0)
    item = Dataset()
    item.RegionSpatialFormat = 1  # 2D
    item.RegionDataType = 1  # tissue
    item.RegionFlags = 0
    item.RegionLocationMinX0, item.RegionLocationMinY0 = x0, y0
    item.RegionLocationMaxX1, item.RegionLocationMaxY1 = x1, y1
    item.PhysicalUnitsXDirection = item.PhysicalUnitsYDirection = 3  # cm
    item.PhysicalDeltaX = item.PhysicalDeltaY = float(cm_per_px)
    item.ReferencePixelX0, item.ReferencePixelY0 = (x0 + x1) // 2, y0
    return item


def _encode_jpeg_frames(frames: np.ndarray, quality: int) -> list[bytes]:
    from PIL import Image

    out = []
    for frame in frames:
        buf = io.BytesIO()
        Image.fromarray(frame, mode="L").save(buf, format="JPEG", quality=quality)
        out.append(buf.getvalue())
    return out


def write_dicom(phantom: PhantomClip, path: str | os.PathLike[str] | io.BytesIO, *, jpeg: bool = False,
                jpeg_quality: int = 92, patient_name: str = "Phantom^LUSWeb", patient_id: str = "PHANTOM",
                study_uid: str | None = None, series_uid: str | None = None, sop_uid: str | None = None,
                study_date: str = "", series_number: int = 1, instance_number: int = 1) -> str:
    """Write an Ultrasound Multi-frame Image Storage object; return its SOP Instance UID.

    8-bit MONOCHROME2, uncompressed (Explicit VR Little Endian) or, with ``jpeg=True``, JPEG
    baseline frames encoded by Pillow from grey images (single component, so MONOCHROME2 too).
    """
    import datetime as dt

    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.tag import Tag
    from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

    frames = phantom.frames
    spec = phantom.spec
    sop_uid = sop_uid or str(generate_uid())
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = UID(US_MULTIFRAME_SOP_CLASS)
    ds.file_meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    ds.file_meta.TransferSyntaxUID = UID(JPEG_BASELINE) if jpeg else ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = US_MULTIFRAME_SOP_CLASS, sop_uid
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = series_uid or generate_uid()
    now = dt.datetime.now()
    ds.StudyDate = study_date or now.strftime("%Y%m%d")
    ds.ContentDate, ds.ContentTime = ds.StudyDate, now.strftime("%H%M%S")
    ds.StudyTime = ds.ContentTime
    ds.AccessionNumber, ds.StudyID, ds.ReferringPhysicianName = "", "1", ""
    ds.SeriesNumber, ds.InstanceNumber = series_number, instance_number
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = patient_name, patient_id, "", ""
    ds.Modality = "US"
    ds.Manufacturer = MANUFACTURER
    ds.ManufacturerModelName = f"Phantom {'C5-2' if spec.geometry == 'convex' else 'L12-4'}"
    ds.TransducerData = "C5-2" if spec.geometry == "convex" else "L12-4"
    ds.TransducerType = "CURVED LINEAR" if spec.geometry == "convex" else "LINEAR"
    ds.ImageType = ["DERIVED", "PRIMARY"]
    ds.ImageComments = "Synthetic lung-ultrasound phantom (LUSWeb); not patient data"
    ds.BurnedInAnnotation = "YES" if phantom.text_mask.any() else "NO"
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns = int(frames.shape[1]), int(frames.shape[2])
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.NumberOfFrames = int(frames.shape[0])
    ds.FrameTime = f"{1000.0 / spec.fps:.4f}".rstrip("0").rstrip(".")
    ds.CineRate = round(spec.fps)
    ds.RecommendedDisplayFrameRate = round(spec.fps)
    ds.FrameIncrementPointer = Tag("FrameTime")
    ds.SequenceOfUltrasoundRegions = [_us_region_item(phantom)]
    if jpeg:
        ds.LossyImageCompression = "01"
        encoded = _encode_jpeg_frames(frames, jpeg_quality)
        ds.LossyImageCompressionRatio = f"{frames.nbytes / sum(len(f) for f in encoded):.2f}"[:16]
        ds.LossyImageCompressionMethod = "ISO_10918_1"
        ds.PixelData = encapsulate(encoded)
        ds["PixelData"].VR = "OB"
        ds["PixelData"].is_undefined_length = True
    else:
        ds.LossyImageCompression = "00"
        ds.PixelData = np.ascontiguousarray(frames, dtype=np.uint8).tobytes()
        ds["PixelData"].VR = "OB"
    ds.save_as(path, enforce_file_format=True)
    return str(sop_uid)


def _even(frames: np.ndarray) -> np.ndarray:
    """Pad to even height/width with black: 4:2:0 H.264 needs it."""
    _, h, w = frames.shape
    return np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2)))


def _mp4_codec() -> str:
    import av

    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


def write_mp4(phantom: PhantomClip, path: str | os.PathLike[str] | io.BytesIO, *, crf: int = 18) -> str:
    """Write an MP4 (H.264 through libx264 when the PyAV wheel has it, else MPEG-4 part 2).

    Odd frame sizes are padded by one black row/column (4:2:0 chroma needs even sizes).
    Returns the codec used.
    """
    import av

    codec = _mp4_codec()
    frames = _even(phantom.frames)
    target = os.fspath(path) if isinstance(path, (str, os.PathLike)) else path
    with av.open(target, mode="w", format="mp4") as container:
        stream: Any = container.add_stream(codec, rate=Fraction(phantom.spec.fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": str(crf), "preset": "veryfast"}
        else:
            stream.bit_rate = 4_000_000
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="gray")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return codec
