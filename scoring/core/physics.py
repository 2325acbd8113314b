"""Hand-crafted, physics-motivated lung-ultrasound clip features (Soldati score criteria).

Pure numpy / scipy; no Django import, no CNN. One call, :func:`clip_physics_features`, turns a grey
cine loop ``uint8 [T, H, W]`` (or a single still frame ``[H, W]``) into a fixed-length, named
feature vector. The pipeline:

1. :func:`sector_geometry` finds the imaging sector (the fan of a convex probe or the rectangle
   of a linear probe) from the clip's temporal max: burned-in text and logos are thin strokes or
   lie apart, the sector is the largest non-black connected region. The two straight side edges
   of a fan are fitted as lines; their intersection (above the image) is the virtual apex.
2. :func:`polar_frames` resamples every frame onto a (radius x angle) grid around the apex
   (bilinear, the coordinate map is computed once per clip). In that *beam space* a reverberation
   artefact of the pleura (A-line: the echo bouncing between the transducer and the pleura, seen
   at integer multiples of the skin-pleura distance) becomes a **row**, and a B-line (a vertical
   ring-down artefact from a fluid-filled subpleural interstitium, following the beam from the
   pleura to the bottom of the image) becomes a **column**. A linear probe needs no resampling:
   the rectangle already is beam space.
3. Rib-shadow columns are dropped (:func:`beam_images`); the pleural line is the strongest long
   horizontal ridge in the upper half of the intercostal window; below it we measure
   A-line periodicity, B-line columns and their confluence, white lung, consolidation texture
   and temporal dynamics, per frame, then summarise over time.

Grey levels differ between clips (gain, time-gain compensation, dynamic range), so every feature
is a ratio, a fraction, a correlation or a geometric length normalised by the imaging depth.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

# Default beam-space grid: radial samples x angular samples (a 350-px fan spans ~310 px radially).
N_R = 128
N_THETA = 96


# --- 1. sector geometry --------------------------------------------------------------------


@dataclass(frozen=True)
class Geometry:
    """The imaging sector of a clip.

    ``kind`` is ``"convex"`` (fan with a virtual apex at ``(apex_x, apex_y)`` in pixel
    coordinates, usually above the image, radii ``r_min..r_max`` in pixels and angles
    ``theta_min..theta_max`` in radians measured from the downward vertical, positive to the
    right) or ``"linear"`` (an axis-aligned rectangle: ``theta_*`` are then x bounds and ``r_*``
    y bounds, in pixels). ``mask`` is the sector in image coordinates.
    """

    kind: str
    mask: np.ndarray  # bool [H, W]
    apex_x: float
    apex_y: float
    r_min: float
    r_max: float
    theta_min: float
    theta_max: float

    @property
    def is_convex(self) -> bool:
        return self.kind == "convex"


def _sector_mask(frames: np.ndarray) -> np.ndarray:
    """Largest bright connected region of the temporal max, holes filled.

    Burned-in text, rulers and logos are thin strokes (removed by a morphological opening) or
    lie apart from the sector (not the largest component). Temporal variation is deliberately not
    required: the chest wall can be nearly static over a loop.
    """
    mx = frames.max(axis=0).astype(np.float32)
    mx = ndimage.uniform_filter(mx, 5)
    # Outside the sector the scanner writes black; inside even a rib shadow has some noise.
    mask = mx > max(2.0, 0.02 * float(np.percentile(mx, 99)))
    mask = ndimage.binary_opening(mask, iterations=3)  # removes thin text strokes and rulers
    labels, n = ndimage.label(mask)
    if n == 0:
        return np.ones(frames.shape[1:], dtype=bool)
    sizes = ndimage.sum_labels(mask, labels, index=np.arange(1, n + 1))
    mask = labels == (1 + int(np.argmax(sizes)))
    return ndimage.binary_fill_holes(mask)


def _fit_edge(y: np.ndarray, x: np.ndarray) -> tuple[float, float, float] | None:
    """Robust line ``x = a + b*y`` through boundary points (trimmed least squares).

    Returns ``(a, b, inlier fraction)`` or None when there are too few points.
    """
    if y.size < 8:
        return None
    keep = np.ones(y.size, dtype=bool)
    a = b = 0.0
    for _ in range(4):
        if keep.sum() < 6:
            return None
        b, a = np.polyfit(y[keep], x[keep], 1)
        res = np.abs(x - (a + b * y))
        keep = res < max(1.5, 2.5 * float(np.median(res[keep])))
    return float(a), float(b), float(keep.mean())


def sector_geometry(frames: np.ndarray) -> Geometry:
    """Find the sector of a clip ``[T, H, W]`` (or a frame ``[H, W]``): fan apex or rectangle.

    Side edges: for each image row the left-most / right-most sector pixel, kept from the top of
    the sector down to where the boundary stops moving outwards (below that it follows the
    bottom arc) and away from the image border (a fan wider than the image is clipped there).
    A convex fan has edges of opposite slope meeting above the sector; anything else (parallel
    edges, implausible angles) is treated as a linear-probe rectangle.
    """
    frames = np.asarray(frames)
    if frames.ndim == 2:
        frames = frames[None]
    h, w = frames.shape[1:]
    mask = _sector_mask(frames)
    ys, xs = np.nonzero(mask)
    y0, y1 = int(ys.min()), int(ys.max())
    rows = np.arange(y0, y1 + 1)
    has: np.ndarray = np.asarray(mask[rows].any(axis=1))
    left = np.where(has, np.argmax(mask[rows], axis=1), -1)
    right = np.where(has, w - 1 - np.argmax(mask[rows, ::-1], axis=1), -1)

    def side(edge: np.ndarray, outward: int) -> tuple[float, float, float] | None:
        # Rows from the top until the boundary reaches its outermost position (first occurrence).
        valid = has.copy()
        extreme = int(np.argmin(np.where(has, edge, w))) if outward < 0 else int(np.argmax(np.where(has, edge, -1)))
        valid[extreme + 1:] = False
        valid &= (edge > 1) & (edge < w - 2)  # not clipped by the image border
        return _fit_edge(rows[valid].astype(np.float64), edge[valid].astype(np.float64))

    fl, fr = side(left, -1), side(right, +1)
    # Rectangle fallback from the rows / columns that the sector mostly fills (a burned-in label
    # touching the sector adds a few short rows or columns, not full ones).
    col_fill, row_fill = mask.sum(axis=0), mask.sum(axis=1)
    cx_, ry_ = np.flatnonzero(col_fill >= 0.5 * col_fill.max()), np.flatnonzero(row_fill >= 0.5 * row_fill.max())
    lin_mask = np.zeros_like(mask)
    lin_mask[ry_[0]:ry_[-1] + 1, cx_[0]:cx_[-1] + 1] = True
    linear = Geometry("linear", mask & lin_mask, float("nan"), float("nan"), float(ry_[0]), float(ry_[-1]),
                      float(cx_[0]), float(cx_[-1]))

    def good(fit: tuple[float, float, float] | None, sign: int) -> bool:
        # A plausible fan edge: 4..75 degrees from the vertical, mostly inliers.
        return fit is not None and fit[2] > 0.6 and np.radians(4) < sign * np.arctan(fit[1]) < np.radians(75)

    ok_l, ok_r = good(fl, -1), good(fr, +1)
    if ok_l and ok_r:
        (al, bl, _), (ar, br, _) = fl, fr  # type: ignore[misc]
        apex_y = (ar - al) / (bl - br)
        apex_x = al + bl * apex_y
        th_l, th_r = float(np.arctan(bl)), float(np.arctan(br))
        if abs(th_l + th_r) > np.radians(8):  # asymmetric: keep only the cleaner edge
            ok_l, ok_r = fl[2] >= fr[2], fl[2] < fr[2]  # type: ignore[index]
    if ok_l != ok_r:
        # One edge hidden (a dark rib shadow reaches the sector border): assume a symmetric fan
        # whose axis passes through the centre of the sector's top row (the near field is bright).
        a_, b_, _ = fl if ok_l else fr  # type: ignore[misc]
        top = np.flatnonzero(mask[y0])
        apex_x = 0.5 * (top.min() + top.max())
        apex_y = (apex_x - a_) / b_
        half = abs(float(np.arctan(b_)))
        th_l, th_r = -half, half
    elif not (ok_l and ok_r):
        return linear
    if not (apex_y < y0 + 0.1 * h and th_r - th_l < np.radians(150)):
        return linear
    # Radial extent: nearest and farthest sector pixels (the bottom arc can be dark under a
    # shadow at some angles but not at all of them).
    # Only pixels between the two edges count: a label touching the fan lies outside them.
    r = np.hypot(xs - apex_x, ys - apex_y)
    th = np.arctan2(xs - apex_x, ys - apex_y)
    inside = (th > th_l + np.radians(2)) & (th < th_r - np.radians(2))
    r = r[inside] if inside.sum() > 50 else r
    # Near and far arcs: the radii whose arc is at least 30 % filled (robust to a label or a
    # ruler touching the fan, which fills a few pixels of an arc, not a third of it).
    counts = np.bincount(np.rint(r).astype(int))
    radii = np.arange(counts.size)
    filled = counts / np.maximum(1.0, radii * (th_r - th_l - np.radians(4)))
    ok = np.flatnonzero(filled >= 0.3)
    if ok.size < 10:
        return linear
    r_min, r_max = float(ok[0]), float(ok[-1])
    margin = np.radians(1.0)  # stay clear of the edge's partial-volume pixels
    # The returned mask is the geometric fan (clean edges, no labels), clipped to the image.
    yy, xx = np.mgrid[0:h, 0:w]
    rr, tt = np.hypot(xx - apex_x, yy - apex_y), np.arctan2(xx - apex_x, yy - apex_y)
    fan = (rr >= r_min) & (rr <= r_max) & (tt >= th_l) & (tt <= th_r)
    return Geometry("convex", fan, float(apex_x), float(apex_y), r_min, r_max,
                    float(th_l + margin), float(th_r - margin))


# --- 2. beam-space resampling --------------------------------------------------------------


def polar_coordinates(geom: Geometry, n_r: int = N_R, n_theta: int = N_THETA) -> tuple[np.ndarray, np.ndarray]:
    """Image coordinates ``(y, x)`` (each ``[n_r, n_theta]``) of the beam-space grid.

    Rows go from the top of the sector (transducer face) to the bottom, columns from left to
    right. For a linear geometry the grid is a plain resampling of the rectangle.
    """
    if geom.is_convex:
        r = np.linspace(geom.r_min, geom.r_max, n_r)[:, None]
        t = np.linspace(geom.theta_min, geom.theta_max, n_theta)[None, :]
        return geom.apex_y + r * np.cos(t), geom.apex_x + r * np.sin(t)
    yy = np.linspace(geom.r_min, geom.r_max, n_r)[:, None] * np.ones((1, n_theta))
    xx = np.ones((n_r, 1)) * np.linspace(geom.theta_min, geom.theta_max, n_theta)[None, :]
    return yy, xx


def polar_frames(frames: np.ndarray, geom: Geometry, n_r: int = N_R, n_theta: int = N_THETA
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Resample frames ``[T, H, W]`` (or ``[H, W]``) to beam space ``float32 [T, n_r, n_theta]``.

    Bilinear interpolation (``scipy.ndimage.map_coordinates(order=1)`` on each frame, with the
    coordinate map computed once). Returns ``(polar, valid)``; ``valid`` ``bool [n_r, n_theta]``
    marks grid points that fall inside the image (a fan wider or taller than the image is clipped
    by the image border, e.g. the Lumify's flat top crop; those samples are invalid).
    """
    frames = np.asarray(frames)
    if frames.ndim == 2:
        frames = frames[None]
    yy, xx = polar_coordinates(geom, n_r, n_theta)
    coords = np.stack([yy.ravel(), xx.ravel()])
    h, w = frames.shape[1:]
    yi, xi = np.rint(yy).astype(int), np.rint(xx).astype(int)
    inside = (yi >= 0) & (yi < h) & (xi >= 0) & (xi < w)
    # Validity is geometric (inside the image), not the pixel mask: a dark rib shadow is data.
    valid = inside
    out = np.empty((frames.shape[0], n_r, n_theta), dtype=np.float32)
    for i, f in enumerate(frames):
        out[i] = ndimage.map_coordinates(f.astype(np.float32), coords, order=1, mode="constant", cval=0.0
                                         ).reshape(n_r, n_theta)
    return out, valid


# --- 3. features ---------------------------------------------------------------------------

def _time_summary(name: str, series: np.ndarray) -> dict[str, float]:
    """Mean / q90 / std over time: B-lines come and go with the breath and clinicians score a
    zone by its worst visible finding, so the upper quantile matters as well as the mean."""
    s = np.asarray(series, dtype=np.float64)
    return {f"{name}_mean": float(s.mean()), f"{name}_q90": float(np.quantile(s, 0.9)),
            f"{name}_std": float(s.std())}


def _ridge(profile: np.ndarray, k: int, axis: int = 0) -> np.ndarray:
    """Bright-line detector along ``axis``: value minus the mean of the values ``k`` before/after."""
    before = np.roll(profile, k, axis=axis)
    after = np.roll(profile, -k, axis=axis)
    return profile - 0.5 * (before + after)


def _pleura(mean_img: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """Per-angle pleural depth (radial index), the global pleural index and ridge strength.

    The pleura is the brightest horizontal ridge (intensity minus the mean ``k`` rows above and
    below) in the upper 5-50 % of the sector on the temporal-mean beam image. A global depth
    comes from the row-mean ridge (robust: the pleura is the one long horizontal line there);
    each angle is then refined within +-8 % of the depth around it (indentations / steps).
    """
    n_r = mean_img.shape[0]
    sm = ndimage.gaussian_filter(mean_img, (1.5, 1.5))
    k = max(3, n_r // 32)
    rid = _ridge(sm, k)
    lo, hi = int(0.05 * n_r), int(0.5 * n_r)
    row_ridge = rid[lo:hi][:, cols].mean(axis=1)
    # The strongest long horizontal ridge: the pleura is brighter than its own reverberations
    # (A-lines, deeper) and than the fascia of the chest wall (shallower).
    g = lo + int(np.argmax(row_ridge))
    # Refine to the local maximum near that first strong ridge row.
    win = slice(max(lo, g - k), min(hi, g + k + 1))
    g = win.start + int(np.argmax(rid[win, cols].mean(axis=1)))
    band = max(2, int(0.08 * n_r))
    a, b = max(1, g - band), min(n_r - 2, g + band + 1)
    per = a + np.argmax(rid[a:b], axis=0)
    strength = rid[per, np.arange(rid.shape[1])]
    return per, float(g), strength


def _autocorr_at(profile: np.ndarray, lag: float) -> float:
    """Normalised autocorrelation of a 1-D profile at a (fractional) lag, best within +-10 %."""
    p = profile - profile.mean()
    den = float((p * p).sum()) + 1e-9
    best = -1.0
    for L in range(max(1, int(np.floor(0.9 * lag))), int(np.ceil(1.1 * lag)) + 1):
        if p.size - 2 <= L:
            break
        best = max(best, float((p[:-L] * p[L:]).sum()) / den)
    return best


def _detrend(profile: np.ndarray, width: int) -> np.ndarray:
    """Profile minus its smooth trend (attenuation / TGC), in units of the trend."""
    trend = ndimage.uniform_filter1d(profile, max(3, width), mode="nearest")
    return profile / (trend + 1e-6) - 1.0


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """(start, length) of the runs of True in a 1-D boolean array."""
    d = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    return list(zip(starts.tolist(), (ends - starts).tolist()))


def beam_images(frames: np.ndarray, geom: Geometry, n_r: int = N_R, n_theta: int = N_THETA
                ) -> tuple[np.ndarray, np.ndarray]:
    """Gain-normalised beam-space frames ``[T, n_r, C]`` over the usable angles, and ``lit``
    ``bool [C]``: the intercostal window (False under a rib shadow)."""
    pol, valid = polar_frames(frames, geom, n_r, n_theta)

    # Columns (angles) usable over (almost) the full depth; their lower 90 % must be valid.
    col_valid = valid[int(0.3 * n_r):int(0.95 * n_r)].mean(axis=0) > 0.95
    if col_valid.sum() < n_theta // 4:
        col_valid = valid.mean(axis=0) > 0.5
    if col_valid.sum() < 4:
        col_valid[:] = True
    cols = np.flatnonzero(col_valid)
    pol = pol[:, :, cols]
    validc = valid[:, cols]
    # Grid points above the image (the Lumify crops the fan's top flat) copy the first valid
    # sample of their column, so the crop edge does not look like a bright horizontal ridge.
    first = np.argmax(validc, axis=0)
    rr = np.arange(n_r)[:, None]
    src = np.where(rr < first[None, :], first[None, :], rr)
    pol = np.take_along_axis(pol, np.broadcast_to(src, pol.shape), axis=1)
    scale = float(pol.mean()) + 1e-6
    pol = pol / scale  # per-clip gain normalisation: everything below is a ratio
    mean_img = pol.mean(axis=0)
    # Rib shadows: the rib reflects everything, the columns below it are dark to the bottom and
    # carry no lung information. The intercostal window = "lit" columns.
    col_level = mean_img[int(0.3 * n_r):int(0.95 * n_r)].mean(axis=0)
    lit = col_level > 0.45 * float(np.quantile(col_level, 0.8))
    if lit.sum() < 4:
        lit[:] = True
    return pol, lit



FEATURE_NAMES: list[str] = []  # filled on first call (fixed order)

# A compact, physics-chosen subset (chosen a priori, not by cross-validation): one or two
# measures per Soldati criterion. Use ``[names.index(n) for n in CORE_FEATURES]`` to select.
CORE_FEATURES: tuple[str, ...] = (
    "aline_autocorr_mean", "aline_prom_mean", "aline_cover_mean", "h_over_v_mean",  # A-lines
    "deep_to_wall_mean", "white_cover_mean", "bottom_to_top_mean",  # white lung
    "bline_cover_mean", "bline_persist_mean",  # B-lines
    "pleura_continuity", "pleura_jitter",  # pleural line
    "sub_cv_mean", "sub_entropy",  # subpleural consolidation texture
    "motion_ratio", "shadow_frac",  # dynamics, rib shadows (acquisition confounder)
)


def clip_physics_features(frames: np.ndarray, *, max_frames: int = 64, n_r: int = N_R, n_theta: int = N_THETA,
                          geom: Geometry | None = None) -> tuple[np.ndarray, list[str]]:
    """Physics features of one clip ``uint8 [T, H, W]`` (or one frame ``[H, W]``).

    Returns ``(values float32 [F], names)``; the length and order are fixed. At most
    ``max_frames`` evenly spaced frames are analysed (a 25 fps loop is heavily redundant).
    A missing apex (linear probe, odd crop) falls back to the Cartesian rectangle.
    """
    frames = np.asarray(frames)
    if frames.ndim == 2:
        frames = frames[None]
    if frames.ndim == 4:  # colour: luma
        frames = (frames[..., :3] @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)
    if geom is None:
        geom = sector_geometry(frames)
    if frames.shape[0] > max_frames:
        frames = frames[np.linspace(0, frames.shape[0] - 1, max_frames).round().astype(int)]
    pol, lit = beam_images(frames, geom, n_r, n_theta)
    t = pol.shape[0]
    f: dict[str, float] = {"shadow_frac": float(1.0 - lit.mean())}
    pol = pol[:, :, lit]
    mean_img = pol.mean(axis=0)
    nc = int(lit.sum())

    # --- pleural line ------------------------------------------------------------------
    per, g, strength = _pleura(mean_img, np.arange(nc))
    gi = int(round(g))
    f["pleura_depth"] = g / n_r  # fraction of the imaging depth
    # Irregularity: jitter of the per-angle depth around a smooth (quadratic) curve, in % depth.
    x = np.linspace(-1, 1, nc)
    fit = np.polyval(np.polyfit(x, per, 2), x)
    f["pleura_jitter"] = float(np.median(np.abs(per - fit))) / n_r * 100
    f["pleura_step"] = float(np.mean(np.abs(np.diff(per)))) / n_r * 100
    # Continuity: the line is "present" at an angle when its ridge is at least 35 % of the
    # clip's strong (q90) ridge; broken pleura -> gaps.
    ref = float(np.quantile(strength, 0.9)) + 1e-6
    present = strength > 0.35 * ref
    f["pleura_continuity"] = float(present.mean())
    gaps = [n for s, n in _runs(~present)]
    f["pleura_max_gap"] = float(max(gaps, default=0)) / nc
    wall = mean_img[max(1, int(0.02 * n_r)):max(2, gi - 3)]
    pl_val = mean_img[per, np.arange(nc)]
    f["pleura_to_wall"] = float(np.median(pl_val) / (wall.mean() + 1e-6)) if wall.size else 1.0
    f["pleura_ridge_cv"] = float(strength.std() / (abs(strength.mean()) + 1e-6))
    # Thickness of the pleural echo: rows above half the peak ridge height around the line.
    prof = mean_img[max(0, gi - 10):gi + 11].mean(axis=1)
    base = float(np.median(mean_img[gi:].mean(axis=1)))
    half_h = base + 0.5 * (prof.max() - base)
    f["pleura_thickness"] = float((prof > half_h).sum()) / n_r * 100

    # --- regions below the pleura ---------------------------------------------------------
    below0 = min(n_r - 8, gi + max(2, n_r // 40))
    depth_left = n_r - below0
    sub = slice(below0, below0 + max(4, depth_left // 4))  # subpleural band (consolidation)
    deep = slice(below0 + depth_left // 3, n_r - max(1, n_r // 40))  # deep region (B-lines reach it)
    wall_mean = float(wall.mean()) if wall.size else 1.0
    pl_mean = float(np.median(pl_val))

    # Per-frame measures.
    deep_img = pol[:, deep]  # [T, r, c]
    sub_img = pol[:, sub]
    col_deep = deep_img.mean(axis=1)  # [T, c]: angular profile of the deep region
    col_sub = sub_img.mean(axis=1)
    row_prof = pol[:, below0:].mean(axis=2)  # [T, r]: radial profile below the pleura

    # White lung: deep echo relative to the chest wall / the pleura (aerated lung is dark below
    # the pleura except for the A-lines; interstitial fluid or consolidation makes it bright).
    deep_mean = deep_img.mean(axis=(1, 2))
    f.update(_time_summary("deep_to_wall", deep_mean / (wall_mean + 1e-6)))
    f.update(_time_summary("deep_to_pleura", deep_mean / (pl_mean + 1e-6)))
    # Depth decay: bottom third vs top third below the pleura (B-lines do not fade).
    n_rows = row_prof.shape[1]
    top3 = row_prof[:, : max(1, n_rows // 3)].mean(axis=1)
    bot3 = row_prof[:, -max(1, n_rows // 3):].mean(axis=1)
    f.update(_time_summary("bottom_to_top", bot3 / (top3 + 1e-6)))

    # A-lines: periodicity of the radial profile at the skin-pleura distance. The transducer face
    # is the top of the beam grid (row 0), so reverberation k sits at row k*g.
    lag = float(g)
    ac, prom2, prom_cov = [], [], []
    for i in range(t):
        full = pol[i].mean(axis=1)
        below = full[below0:]
        dt = _detrend(below, int(lag))
        ac.append(_autocorr_at(dt, lag) if lag < below.size - 2 else 0.0)
        # Prominence of the expected 2nd reverberation row vs its neighbourhood, per angle.
        r2 = int(round(2 * lag))
        if r2 + 3 < n_r and lag >= 4:
            w2 = max(2, int(lag // 4))
            lo_, hi_ = max(below0, r2 - w2), min(n_r, r2 + w2 + 1)
            ring_lo, ring_hi = max(below0, r2 - 2 * w2 - 2), min(n_r, r2 + 2 * w2 + 3)
            sm = ndimage.uniform_filter1d(pol[i], 3, axis=1)
            peak = sm[lo_:hi_].max(axis=0)
            ring = np.concatenate([sm[ring_lo:lo_], sm[hi_:ring_hi]], axis=0).mean(axis=0)
            p = peak / (ring + 1e-6)
            prom2.append(float(np.median(p)))
            prom_cov.append(float((p > 1.25).mean()))
        else:
            prom2.append(1.0)
            prom_cov.append(0.0)
    f.update(_time_summary("aline_autocorr", np.array(ac)))
    f.update(_time_summary("aline_prom", np.array(prom2)))
    f.update(_time_summary("aline_cover", np.array(prom_cov)))

    # Horizontal vs vertical structure below the pleura: variance of the row means (A-lines,
    # horizontal) vs variance of the column means (B-lines / shadows, vertical), on detrended data.
    region = pol[:, below0 + 2:]
    rowm = region.mean(axis=2)
    rowm = rowm / (ndimage.uniform_filter1d(rowm, max(3, int(lag)), axis=1, mode="nearest") + 1e-6)
    colm = region.mean(axis=1)
    colm = colm / (colm.mean(axis=1, keepdims=True) + 1e-6)
    f.update(_time_summary("h_over_v", np.log((rowm.var(axis=1) + 1e-6) / (colm.var(axis=1) + 1e-6))))

    # B-lines: columns of the deep region brighter than the angular background. Background = 30th
    # percentile of the angular profile (rib shadows excluded: columns darker than half the median).
    nb, width, cover, contrast, cmax, length = [], [], [], [], [], []
    sm_deep = ndimage.uniform_filter1d(col_deep, 3, axis=1)
    sm_sub = ndimage.uniform_filter1d(col_sub, 3, axis=1)
    for i in range(t):
        a = sm_deep[i]
        med = float(np.median(a))
        shadow = a < 0.5 * med
        window = a[~shadow] if (~shadow).sum() >= 4 else a
        bg = float(np.quantile(window, 0.3)) + 1e-6
        c = a / bg
        bright = (c > 1.35) & ~shadow
        runs = [(s, n) for s, n in _runs(bright) if n >= 2]
        nb.append(len(runs))
        width.append(float(np.mean([n for _, n in runs])) / nc if runs else 0.0)
        cover.append(float(sum(n for _, n in runs)) / nc)
        contrast.append(float(np.quantile(c, 0.95)))
        cmax.append(float(c.max()))
        # "Reaches the bottom": in bright columns the deep level stays close to the subpleural level.
        if runs:
            idx = np.concatenate([np.arange(s, s + n) for s, n in runs])
            length.append(float(np.mean(a[idx] / (sm_sub[i][idx] + 1e-6))))
        else:
            length.append(0.0)
    f.update(_time_summary("bline_count", np.array(nb, float)))
    f.update(_time_summary("bline_width", np.array(width)))
    f.update(_time_summary("bline_cover", np.array(cover)))
    f.update(_time_summary("bline_contrast", np.array(contrast)))
    f["bline_contrast_max"] = float(np.max(cmax))
    f.update(_time_summary("bline_persist", np.array(length)))
    # Confluence: the fraction of columns whose deep level is at least the chest-wall level.
    f.update(_time_summary("white_cover", (sm_deep > wall_mean).mean(axis=1)))

    # Consolidation / tissue-like texture in the subpleural band: speckle statistics. Aerated lung
    # below the pleura is dark with horizontal A-lines; hepatised lung shows tissue speckle
    # (coefficient of variation ~0.5 for fully developed speckle), hypoechoic patches and bright
    # air bronchograms.
    sb = sub_img.reshape(t, -1)
    cv = sb.std(axis=1) / (sb.mean(axis=1) + 1e-6)
    f.update(_time_summary("sub_cv", cv))
    f.update(_time_summary("sub_to_pleura", sb.mean(axis=1) / (pl_mean + 1e-6)))
    f["sub_dark_frac"] = float((sub_img.mean(axis=0) < 0.4 * float(np.median(mean_img[below0:]))).mean())
    hist_edges = np.linspace(0, 4, 33)
    h, _ = np.histogram(np.clip(sub_img[:: max(1, t // 8)].ravel() / (float(sb.mean()) + 1e-6), 0, 3.99), hist_edges)
    p = h / max(1, h.sum())
    f["sub_entropy"] = float(-(p[p > 0] * np.log(p[p > 0])).sum())
    # Lateral texture: mean absolute angular gradient vs radial gradient in the subpleural band.
    gr = np.abs(np.diff(sub_img, axis=1)).mean()
    gt = np.abs(np.diff(sub_img, axis=2)).mean()
    f["sub_grad_ratio"] = float(gt / (gr + 1e-6))

    # Temporal dynamics: frame-to-frame change below the pleura (lung sliding, moving B-lines)
    # relative to the change in the chest wall (probe motion), and B-line profile motion.
    if t >= 3:
        dlung = np.abs(np.diff(pol[:, below0:], axis=0)).mean(axis=(1, 2))
        dwall = np.abs(np.diff(pol[:, 1:max(2, gi - 2)], axis=0)).mean(axis=(1, 2))
        f["motion_ratio"] = float(np.mean(dlung) / (np.mean(dwall) + 1e-6))
        zc = col_deep - col_deep.mean(axis=1, keepdims=True)
        num = (zc[1:] * zc[:-1]).sum(axis=1)
        den = np.sqrt((zc[1:] ** 2).sum(axis=1) * (zc[:-1] ** 2).sum(axis=1)) + 1e-9
        f["col_profile_corr"] = float(np.mean(num / den))
        f["deep_temporal_cv"] = float((col_deep.std(axis=0) / (col_deep.mean(axis=0) + 1e-6)).mean())
    else:
        f["motion_ratio"] = 1.0
        f["col_profile_corr"] = 1.0
        f["deep_temporal_cv"] = 0.0
    f["convex"] = float(geom.is_convex)

    names = list(f)
    if not FEATURE_NAMES:
        FEATURE_NAMES.extend(names)
    values = np.nan_to_num(np.array([f[n] for n in names], dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    return values, names
