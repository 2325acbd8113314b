"""Hand-crafted per-frame LUS features (the featuriser appends them to its pooled CNN features).

Hand-crafted features (all relative, so probe gain does not matter much) work on the
preprocessed canvas (sector top-aligned, zero outside):

* depth-intensity profile: the row means; the pleura is the brightest row in the upper
  part; mean brightness of four depth bands below it relative to the pleura (white lung =
  bright deep region, normal lung = dark below the pleura except A-lines);
* A-line periodicity: A-lines are reverberations of the pleura at multiples of its depth,
  so the profile at 2x and 3x the pleura depth is a local peak in normal lung;
* vertical line energy: B-lines are bright vertical (radial) lines from the pleura to the
  bottom: high-pass column profile below the pleura, its consistency between the upper and
  lower half, and the gradient anisotropy (|d/dx| vs |d/dy|);
* pleural line: continuity of the brightest band (broken / thickened pleura);
* temporal: mean absolute frame difference below and at the pleura (B-lines move with the
  pleura; consolidations and lung sliding change the temporal texture);
* grey-level quantiles of the sector.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

HAND_NAMES: tuple[str, ...] = (
    "pleura_depth", "pleura_rel", "band1_rel", "band2_rel", "band3_rel", "band4_rel",
    "deep_over_shallow", "aline2_peak", "aline3_peak", "aline_autocorr",
    "vline_energy", "vline_max", "vline_consistency", "vline_count", "grad_anisotropy",
    "grad_x_below", "grad_y_below", "pleura_continuity", "pleura_thickness",
    "dark_fraction_below", "q10", "q50", "q90", "q99", "mean_valid",
    "tdiff_below", "tdiff_pleura", "tdiff_ratio", "below_cv", "bright_fraction_below",
)


_EPS = 1e-3


def _unit(frames: np.ndarray) -> np.ndarray:
    """Frames as float32 in [0, 1] (uint8 frames, or any above 1.5, are rescaled from 0-255)."""
    x = np.asarray(frames, dtype=np.float32)
    return x / 255.0 if x.max() > 1.5 else x


def _smooth1d(v: np.ndarray, sigma: float) -> np.ndarray:
    return ndimage.gaussian_filter1d(v, sigma, mode="nearest")


def handcrafted_features(frames: np.ndarray) -> np.ndarray:
    """Physics features for every frame of a preprocessed clip.

    ``frames``: float [T,S,S] in [0,1] (or uint8, rescaled). Returns float32
    [T, len(HAND_NAMES)].
    """
    x = _unit(frames)
    clip = _clip_maps(x)
    out = np.zeros((x.shape[0], len(HAND_NAMES)), np.float32)
    for i in range(x.shape[0]):
        out[i] = _frame_features(clip, i)
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


@dataclass(frozen=True)
class _ClipMaps:
    """What every frame's features read: the sector's central columns, row profiles, frame
    differences, gradients and grey-level quantiles, computed once per clip."""

    xc: np.ndarray  # [T, S, C] frames, central columns
    c0: int  # the first central column on the canvas
    vc: np.ndarray  # [S, C] float: inside the sector
    prof: np.ndarray  # [T, S] row means
    prof_s: np.ndarray  # [T, S] row means, smoothed
    mean_valid: np.ndarray  # [T] mean of the sector
    first_row: int
    last_row: int
    top_lim: int  # the pleura is searched above this row
    d: np.ndarray  # [T, S, C] absolute frame differences
    gx_all: np.ndarray  # [T, S, C-1] |d/dx| of the smoothed frames
    gy_all: np.ndarray  # [T, S-1, C] |d/dy|
    qs: np.ndarray  # [T, 4] quantiles 10, 50, 90, 99 % of the sector


def _clip_maps(x: np.ndarray) -> _ClipMaps:
    t, s, _ = x.shape
    valid = x.max(0) > 0.0
    if valid.sum() < 16:
        valid = np.ones((s, s), bool)
    cols = np.nonzero(valid.any(0))[0]
    # Central 60% of the sector's width: in a convex fan those lines are nearly vertical.
    c0 = int(cols[0] + 0.2 * (cols[-1] - cols[0]))
    c1 = int(cols[0] + 0.8 * (cols[-1] - cols[0])) + 1
    xc = x[:, :, c0:c1]
    vc = valid[:, c0:c1].astype(np.float32)
    vsum_r = np.maximum(vc.sum(1), 1.0)
    rows_ok = vc.sum(1) > 0.5 * (c1 - c0)
    prof = (xc * vc).sum(2) / vsum_r  # [T, S] row means
    last_row = int(np.nonzero(rows_ok)[0][-1]) if rows_ok.any() else s - 1
    first_row = int(np.nonzero(rows_ok)[0][0]) if rows_ok.any() else 0
    # Frame differences (forward, first frame reuses the next one's).
    if t > 1:
        d = np.abs(np.diff(xc, axis=0))
        d = np.concatenate([d[:1], d], 0)
    else:
        d = np.zeros_like(xc)
    smooth = ndimage.gaussian_filter(xc, (0, 1.0, 1.0))  # once for both gradients (it was computed twice)
    return _ClipMaps(
        xc=xc, c0=c0, vc=vc, prof=prof, prof_s=ndimage.gaussian_filter1d(prof, 1.5, axis=1),
        mean_valid=(x * valid).sum((1, 2)) / valid.sum(), first_row=first_row, last_row=last_row,
        top_lim=first_row + max(4, int(0.45 * (last_row - first_row))), d=d,
        gx_all=np.abs(np.diff(smooth, axis=2)),
        gy_all=np.abs(np.diff(smooth, axis=1)),
        # Grey-level quantiles of the sector for all frames in one call (same values as per frame).
        qs=np.quantile(x[:, valid], [0.1, 0.5, 0.9, 0.99], axis=1).T if valid.any() else np.zeros((t, 4)),
    )


def _frame_features(c: _ClipMaps, i: int) -> tuple[float, ...]:
    """Frame ``i``'s features, in HAND_NAMES order."""
    p = c.prof_s[i]
    py = _pleura_row(c, i)
    pv = float(p[py]) + _EPS
    depth = max(py - c.first_row, 1)
    below0 = _below_pleura(c, py)
    span = max(c.last_row - below0, 4)
    bands = [float(c.prof[i, below0 + k * span // 4 : below0 + (k + 1) * span // 4 + 1].mean()) for k in range(4)]
    reg = c.xc[i, below0 : c.last_row]
    rv = c.vc[below0 : c.last_row]
    hp, cm, cons, count = _vertical_lines(reg, rv)
    gx = float(c.gx_all[i, below0 : c.last_row].mean())
    gy = float(c.gy_all[i, below0 : c.last_row].mean())
    colmax = c.xc[i, max(py - 3, 0) : py + 4].max(0)
    vals = reg[rv > 0]
    td_b = float(c.d[i, below0 : c.last_row].mean())
    td_p = float(c.d[i, max(py - 3, 0) : py + 4].mean())
    return (
        (py - c.first_row) / max(c.last_row - c.first_row, 1), pv / (c.mean_valid[i] + _EPS),
        bands[0] / pv, bands[1] / pv, bands[2] / pv, bands[3] / pv,
        (bands[2] + bands[3]) / (bands[0] + bands[1] + _EPS),
        _reverberation_peak(p, 2.0, depth, c.first_row, c.last_row),
        _reverberation_peak(p, 3.0, depth, c.first_row, c.last_row),
        _autocorrelation(c.prof[i, below0 : c.last_row], depth),
        float(hp.std() / cm), float(hp.max() / cm), cons, count, gx / (gy + _EPS),
        gx / cm, gy / cm, float(colmax.std() / (colmax.mean() + _EPS)),
        float((p[max(py - 10, 0) : py + 11] > 0.5 * pv).sum()),
        float((vals < 0.08).mean()) if vals.size else 0.0, *c.qs[i], c.mean_valid[i],
        td_b / cm, td_p / pv, td_b / (td_p + _EPS), float(vals.std() / (vals.mean() + _EPS)) if vals.size else 0.0,
        float((vals > 0.5 * pv).mean()) if vals.size else 0.0,
    )


def _pleura_row(c: _ClipMaps, i: int) -> int:
    """Frame ``i``'s pleura: the brightest row of the smoothed profile in the upper part."""
    return c.first_row + 2 + int(np.argmax(c.prof_s[i, c.first_row + 2 : c.top_lim]))


def _below_pleura(c: _ClipMaps, py: int) -> int:
    """The first row of the region below the pleura at row ``py`` (where B-lines are looked for)."""
    return min(py + 4, c.last_row - 4)


def artefact_masks(frames: np.ndarray) -> np.ndarray:
    """Pleural-line and vertical-artefact masks of every frame, float32 [T, 2, S, S] in {0, 1}: the
    detectors behind the features above, drawn as images (the ``masks`` direction of
    ``docs/directions.md``). Channel 0: the pleura row +- 2 px; channel 1: below the pleura, the
    columns whose high-passed brightness exceeds a quarter of the mean (the ``vline_count``
    threshold). Both within the sector's central columns, zero outside the sector."""
    x = _unit(frames)
    c = _clip_maps(x)
    t, s, _ = x.shape
    out = np.zeros((t, 2, s, s), np.float32)
    cols = slice(c.c0, c.c0 + c.xc.shape[2])
    for i in range(t):
        py = _pleura_row(c, i)
        below0 = _below_pleura(c, py)
        out[i, 0, max(py - 2, 0) : py + 3, cols] = c.vc[max(py - 2, 0) : py + 3]
        hp, cm, _, _ = _vertical_lines(c.xc[i, below0 : c.last_row], c.vc[below0 : c.last_row])
        lines = (hp > 0.25 * cm).astype(np.float32)
        out[i, 1, below0 : c.last_row, cols] = lines[None, :] * c.vc[below0 : c.last_row]
    return out


def _reverberation_peak(p: np.ndarray, mult: float, depth: int, first_row: int, last_row: int) -> float:
    """Prominence of the row profile ``p`` at ``mult`` times the pleura depth (an A-line)."""
    c = first_row + int(round(mult * depth))
    w = max(2, depth // 3)
    if c + w >= last_row:
        return 0.0
    loc = p[max(c - 2, 0) : c + 3].max()
    ring = np.concatenate([p[c - w - 3 : c - w], p[c + w : c + w + 3]])
    return float((loc - ring.mean()) / (ring.mean() + _EPS)) if ring.size else 0.0


def _autocorrelation(profile: np.ndarray, lag: int) -> float:
    """Normalised autocorrelation of the detrended row profile below the pleura at ``lag`` rows
    (the pleura depth: A-lines repeat at it)."""
    seg = profile - _smooth1d(profile, 6.0)
    if seg.size <= lag + 4:
        return 0.0
    a, b = seg[:-lag], seg[lag:]
    den = float(np.sqrt((a * a).sum() * (b * b).sum())) + 1e-9
    return float((a * b).sum() / den)


def _vertical_lines(reg: np.ndarray, rv: np.ndarray) -> tuple[np.ndarray, float, float, float]:
    """Column profile below the pleura: its high-pass ``hp``, mean ``cm``, the consistency of the
    upper and lower halves' high-pass, and the number of local peaks above a quarter of ``cm``."""
    cprof = (reg * rv).sum(0) / np.maximum(rv.sum(0), 1)
    hp = cprof - _smooth1d(cprof, 6.0)
    cm = float(cprof.mean()) + _EPS
    half = reg.shape[0] // 2
    up = (reg[:half] * rv[:half]).sum(0) / np.maximum(rv[:half].sum(0), 1)
    lo = (reg[half:] * rv[half:]).sum(0) / np.maximum(rv[half:].sum(0), 1)
    up = up - _smooth1d(up, 6.0)
    lo = lo - _smooth1d(lo, 6.0)
    cons = float((up * lo).sum() / (np.sqrt((up * up).sum() * (lo * lo).sum()) + 1e-9))
    thr = 0.25 * cm
    count = float(((hp[1:-1] > thr) & (hp[1:-1] >= hp[:-2]) & (hp[1:-1] >= hp[2:])).sum())
    return hp, cm, cons, count
