"""The ultrasound sector of a clip: THE sector finder, for the model's crop and for redaction.

numpy / scipy only (no torch): the web process redacts and shows frames without loading the
scorer's libraries. Once per clip, not per frame, from the same probe maps: the temporal max
and standard deviation over evenly spaced frames (speckle moves; burned-in text, rulers and
logos do not). :func:`hull_mask` is the one convex-hull rasteriser (fans and linear rectangles
are both convex). Two callers need two readings of those maps, chosen by ``SectorConfig.redact``:

**The tight reading** (:data:`MODEL_CROP`, the model's crop): maps locally averaged (speckle
makes single-pixel maps full of holes); moving pixels (bright ones for a still or a frozen
loop), opened (removes thin text strokes and ruler ticks); every component of at least 10% of
the largest one (static dark bands - rib shadows, anechoic areas - can split the image), plus a
static near field spanning the moving image's width; holes filled, the growth of the local
means undone by a 2-pixel erosion; the convex hull. Not found: all True (nothing cropped).

**The raw reading** (:data:`REDACTION`, de-identification and the frames shown to researchers):
built to be *conservative*, it may keep a little of the frame around the image but must never
cut into it, and must leave burned-in text out. Single-pixel maps (every moving pixel that is
not black), the large moving components, the bright static pixels of the max image touching
them (pleural line, dim rim) and a static band right above or below the image across its width
(the chest wall over an anechoic effusion); holes filled; the convex hull widened by ``margin``
pixels. A still, a frozen loop or a patchy motion map falls back to the bright region. When no
component covers ``min_area_fraction`` of the frame, or the widened hull covers more than
``max_area_fraction``, nothing is trusted (``found=False``, all True): redaction then removes
nothing rather than risk cutting into the image, and the selectors withhold such frames from
researchers rather than show their text.

Why two readings and not one (measured on all 235 COVID-BLUES and 163 POCUS files when the
code base's finders were merged here; both readings gave bit-identical masks before and after):

* the tight reading is bound to the weights - its parameters are stored in every weights file
  (``scoring.core.features.preprocess.PreprocessConfig``) and the training caches and fitted
  heads depend on every pixel of it - so it stays bit-identical and cannot be loosened;
* used for redaction, the tight sector widened by its touching bright pixels and a margin
  drops visible pixels the raw reading keeps (the faint, deep far field of a strongly
  attenuating lung and the dim rim of a fan: 6,656 pixels brighter than grey 8 on 194 of the
  COVID-BLUES clips) and gives up on two POCUS clips the raw reading redacts;
* the union of both readings never cuts into the model's crop, but the tight hull swallows a
  burned-in text pixel next to a linear phantom's image, and redaction must remove all text.

So the raw reading still redacts a sliver of the model's crop on 22 COVID-BLUES and 11 POCUS
clips (as before the merge): the model then sees those pixels black on de-identified uploads.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError


@dataclass(frozen=True)
class SectorConfig:
    """Parameters of :func:`find_sector`; see the module for what each reading does."""

    # The tight reading (stored in the weights through PreprocessConfig); std_threshold,
    # open_iterations and min_area_fraction serve the raw reading too.
    max_probe_frames: int = 32
    std_threshold: float = 2.0
    max_threshold: int = 12
    open_iterations: int = 2
    min_area_fraction: float = 0.08
    # The raw reading (redaction).
    redact: bool = False
    raw_probe_frames: int = 64
    raw_max_threshold: int = 8
    margin: float = 1.5
    max_area_fraction: float = 0.98


#: The model's crop with the default preprocessing (a weights file carries its own parameters).
MODEL_CROP = SectorConfig()
#: De-identification and the frames researchers see.
REDACTION = SectorConfig(redact=True)


@dataclass(frozen=True)
class Sector:
    """``mask``: bool [H, W], True inside the image area. ``found`` is False when no plausible
    sector was found: then the mask is all True (nothing is cropped or redacted). ``method``:
    ``motion`` (a cine loop) or ``max`` (a still or a frozen loop: the bright region)."""

    mask: np.ndarray
    found: bool
    method: str

    @property
    def area_fraction(self) -> float:
        return float(self.mask.mean())


def find_sector(frames: np.ndarray, cfg: SectorConfig = REDACTION) -> Sector:
    """The ultrasound image area of a clip (grey [T, H, W] or one image [H, W]): the raw reading
    with ``cfg.redact``, else the tight reading (see the module)."""
    f = np.asarray(frames)
    if f.ndim == 2:
        f = f[None]
    if f.ndim != 3:
        raise ValueError(f"grey frames [T, H, W] expected, got shape {f.shape}")
    return _raw(f, cfg) if cfg.redact else _tight(f, cfg)


def hull_mask(mask: np.ndarray) -> np.ndarray:
    """Rasterised convex hull of a boolean mask (half-plane test over the hull's facets)."""
    ys, _xs = np.nonzero(mask)
    if len(ys) < 3:
        return mask.copy()
    # Boundary pixels are enough for the hull and much cheaper than all pixels.
    edge = mask & ~ndimage.binary_erosion(mask)
    ey, ex = np.nonzero(edge)
    try:
        hull = ConvexHull(np.stack([ex, ey], 1).astype(np.float64))
    except QhullError:
        return mask.copy()
    h, w = mask.shape
    yy, xx = np.mgrid[0:h, 0:w]
    out = np.ones((h, w), bool)
    # Each facet equation a*x + b*y + c <= 0 holds inside; 0.5 px tolerance keeps the edge pixels.
    for a, b, c in hull.equations:
        out &= (a * xx + b * yy + c) <= 0.5
    return out | mask


def _probe(frames: np.ndarray, n: int) -> np.ndarray:
    """Up to ``n`` evenly spaced frames as float32 (consecutive frames are nearly identical)."""
    t = frames.shape[0]
    return frames[np.linspace(0, t - 1, min(t, n)).round().astype(int)].astype(np.float32)


def _large_components(mask: np.ndarray, min_frac: float) -> tuple[np.ndarray, np.ndarray, list]:  # type: ignore[type-arg]
    """Labels, sizes and slices of the components of ``mask``; sizes of those under ``min_frac``
    of the frame are 0."""
    lab, n = ndimage.label(mask)
    sizes = np.asarray(ndimage.sum_labels(mask, lab, index=np.arange(1, n + 1)), float) if n else np.zeros(0)
    big = sizes >= min_frac * mask.size
    return lab, np.where(big, sizes, 0.0), ndimage.find_objects(lab)


# --- the tight sector ----------------------------------------------------------------------------


def _tight(f: np.ndarray, cfg: SectorConfig) -> Sector:
    h, w = f.shape[1:]
    probe = _probe(f, cfg.max_probe_frames)
    bright = ndimage.uniform_filter(probe.max(0), 3) > cfg.max_threshold
    moving = np.zeros_like(bright)
    if len(probe) >= 3:
        moving = ndimage.uniform_filter(probe.std(0), 5) > cfg.std_threshold
    use_motion = bool(moving.mean() > cfg.min_area_fraction)  # a frozen loop or a still has no motion
    method = "motion" if use_motion else "max"
    base = ndimage.binary_opening(moving if use_motion else bright, iterations=cfg.open_iterations)
    lab, sizes, _ = _large_components(base, 0.005)
    if not sizes.any():
        return Sector(np.ones((h, w), bool), False, method)
    big = np.isin(lab, np.nonzero(sizes >= 0.1 * sizes.max())[0] + 1)
    if use_motion:
        big |= _static_near_field(big, bright, cfg.open_iterations)
    if big.mean() < cfg.min_area_fraction:
        return Sector(np.ones((h, w), bool), False, method)
    big = ndimage.binary_fill_holes(big)
    # Undo the growth of the 5x5 / 3x3 local means (keeps adjacent rulers out of the hull).
    return Sector(hull_mask(ndimage.binary_erosion(big, iterations=2)), True, method)


def _static_near_field(moving: np.ndarray, bright: np.ndarray, open_iterations: int) -> np.ndarray:
    """Static bright regions of the tight sector's image.

    Static overlays (text, rulers, logos) do not move and are left out even when they touch the
    image. A static near field (e.g. above the pleura with a still probe) is added when it spans
    at least half the moving image's width within its columns; labels and logos are narrow or
    outside those columns.
    """
    h, w = moving.shape
    cols = np.nonzero(moving.any(0))[0]
    c0, c1 = int(cols.min()), int(cols.max())
    static = bright & ~ndimage.binary_dilation(moving, iterations=3)
    static = ndimage.binary_opening(static, iterations=open_iterations)
    slab, ssizes, _ = _large_components(static, 0.005)
    in_cols = np.zeros((h, w), bool)
    in_cols[:, max(c0 - 3, 0) : c1 + 4] = True
    out = np.zeros((h, w), bool)
    for j in np.nonzero(ssizes)[0]:
        inside = (slab == j + 1) & in_cols
        xs = np.nonzero(inside.any(0))[0]
        if xs.size and inside.sum() >= 0.8 * ssizes[j] and (xs[-1] - xs[0]) >= 0.5 * (c1 - c0):
            out |= inside
    return out


# --- the raw reading (redaction) -----------------------------------------------------------------


def _raw(f: np.ndarray, cfg: SectorConfig) -> Sector:
    """The raw reading: the widened hull of the image on single-pixel maps, or not found.

    Cine loops are read by motion; stills, frozen loops and short or heavily compressed loops
    whose motion map is too patchy by the bright region of the max image.
    """
    h, w = f.shape[1:]
    probe = _probe(f, cfg.raw_probe_frames)
    mx = probe.max(0)
    bright = mx > cfg.raw_max_threshold
    attempts: list[tuple[str, np.ndarray]] = []
    if len(probe) >= 3:
        moving = probe.std(0) > cfg.std_threshold
        if moving.mean() > cfg.min_area_fraction / 2:
            attempts.append(("motion", moving & (mx > 2)))
    attempts.append(("max", bright))
    for method, cand in attempts:
        core = _raw_core(cand, bright if method == "motion" else None, cfg)
        if core is None:
            continue
        hull = hull_mask(ndimage.binary_fill_holes(core))
        if cfg.margin > 0:
            hull = ndimage.distance_transform_edt(~hull) <= cfg.margin
        if hull.mean() <= cfg.max_area_fraction:
            return Sector(hull, True, method)
    return Sector(np.ones((h, w), bool), False, attempts[0][0])


def _raw_core(cand: np.ndarray, bright: np.ndarray | None, cfg: SectorConfig) -> np.ndarray | None:
    """The image's pixels from a candidate map; None if implausible. ``bright`` (the max image's
    bright pixels) is given for a motion map."""
    h, w = cand.shape
    cand = ndimage.binary_opening(cand, iterations=cfg.open_iterations)
    lab, n = ndimage.label(cand)
    if n == 0:
        return None
    sizes = ndimage.sum_labels(cand, lab, index=np.arange(1, n + 1))
    if sizes.max() < cfg.min_area_fraction * h * w:
        return None
    if bright is None:
        return np.asarray(lab == (int(np.argmax(sizes)) + 1))
    # Burned-in text does not move, so large moving components are all image.
    core = np.isin(lab, np.flatnonzero(sizes >= max(0.005 * h * w, 0.05 * sizes.max())) + 1)
    # Bright static pixels touching the moving region belong to the image (pleural line, the rim
    # of the fan); separate bright blobs (text, logos) do not ...
    blab, _bn = ndimage.label(bright | core)
    touching = np.unique(blab[core])
    core = np.isin(blab, touching[touching > 0])
    return core | _static_band(bright, core)


def _static_band(bright: np.ndarray, core: np.ndarray) -> np.ndarray:
    """... except a large static band right above or below the image, across its width: the chest
    wall over an anechoic effusion, which cuts it off from the moving lung."""
    h, w = core.shape
    olab, _on = ndimage.label(ndimage.binary_opening(bright & ~core, iterations=2))
    cols = np.flatnonzero(core.any(0))
    rows = np.flatnonzero(core.any(1))
    out = np.zeros((h, w), bool)
    for i, sl in enumerate(ndimage.find_objects(olab), start=1):
        if sl is None or (olab[sl] == i).sum() < 0.02 * h * w:
            continue
        c0, c1, r0, r1 = sl[1].start, sl[1].stop, sl[0].start, sl[0].stop
        overlap = max(0, min(c1, cols[-1] + 1) - max(c0, cols[0]))
        gap = max(rows[0] - r1, r0 - rows[-1] - 1, 0)
        if overlap >= 0.5 * (c1 - c0) and gap <= 0.1 * h:
            out |= olab == i
    return out
