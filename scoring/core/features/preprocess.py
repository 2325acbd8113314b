"""Sector detection, cropping, masking and resizing of LUS frames.

Bound to the weights: the parameters (:class:`PreprocessConfig`) are stored in every weights
file and the scorer rebuilds the exact same pipeline from them.

The sector (once per clip, not per frame) is the tight sector of
:func:`patients.imaging.core.sector.find_sector` with this configuration's parameters
(:meth:`PreprocessConfig.sector`). Frames are cropped to its bounding box, everything outside
it is set to 0, and the crop is resized keeping its aspect ratio into a ``size x size`` canvas: centred
horizontally, **top-aligned** (depth 0 stays at row 0 so the pleura sits at a similar row
for all probes), zero-padded.  All steps are deterministic numpy / scipy.ndimage / torch.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from patients.imaging.core.sector import SectorConfig, find_sector

#: Bump when the output of :func:`preprocess_clip` changes (keys the feature caches).
PREPROCESS_VERSION = "pp-2"


@dataclass(frozen=True)
class PreprocessConfig:
    """Parameters of the preprocessing bound to a weights file."""

    size: int = 128
    max_probe_frames: int = 32
    std_threshold: float = 2.0
    max_threshold: int = 12
    open_iterations: int = 2
    min_area_fraction: float = 0.08
    intensity: str = "p99"  # "none" | "p99": per-clip gain normalisation (see normalise_intensity)
    version: str = PREPROCESS_VERSION

    def sector(self) -> SectorConfig:
        """The sector finder's configuration: the tight sector with these parameters."""
        return SectorConfig(max_probe_frames=self.max_probe_frames, std_threshold=self.std_threshold,
                            max_threshold=self.max_threshold, open_iterations=self.open_iterations,
                            min_area_fraction=self.min_area_fraction)

    def to_dict(self) -> dict[str, object]:
        """Plain dict (stored in weights metadata)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> PreprocessConfig:
        """Inverse of :meth:`to_dict` (unknown keys ignored)."""
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in names})  # type: ignore[arg-type]


@dataclass
class Geometry:
    """Where the processed canvas came from in the original frame (to undo the mapping)."""

    orig_shape: tuple[int, int]
    bbox: tuple[int, int, int, int]  # y0, y1, x0, x1 (exclusive ends) in the original frame
    scale: float  # canvas pixels per original pixel
    offset: tuple[int, int]  # (row, col) of the crop's top-left corner on the canvas
    size: int
    new_hw: tuple[int, int]  # size of the resized crop on the canvas
    mask: np.ndarray = field(repr=False)  # bool [H, W] sector mask in the original frame


def to_grey(frames: np.ndarray) -> np.ndarray:
    """Accept [H,W], [T,H,W] or [T,H,W,C] (RGB/RGBA) and return uint8 [T,H,W]."""
    a = np.asarray(frames)
    if a.ndim == 2:
        a = a[None]
    if a.ndim == 4:
        c = a[..., :3].astype(np.float32)
        a = c[..., 0] * 0.299 + c[..., 1] * 0.587 + c[..., 2] * 0.114
    if a.dtype != np.uint8:
        a = np.clip(a, 0, 255).astype(np.uint8) if a.max() > 1.5 else (np.clip(a, 0, 1) * 255).astype(np.uint8)
    return a


def geometry_for(mask: np.ndarray, size: int) -> Geometry:
    """Crop box and scale that fit the mask's bounding box into a ``size`` canvas."""
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
    hh, ww = y1 - y0, x1 - x0
    scale = size / max(hh, ww)
    nh, nw = max(1, round(hh * scale)), max(1, round(ww * scale))
    offset = (0, (size - nw) // 2)
    return Geometry((int(mask.shape[0]), int(mask.shape[1])), (y0, y1, x0, x1), scale, offset, size, (nh, nw), mask)


def apply_geometry(frames: np.ndarray, geom: Geometry, crop: torch.Tensor | None = None) -> np.ndarray:
    """Crop, mask and resize uint8 frames [T,H,W] to float32 [T,size,size] in [0,1]. ``crop``: the
    masked crop (:func:`masked_crop`) when another canvas of the same clip already made it."""
    if crop is None:
        crop = masked_crop(frames, geom)
    nh, nw = geom.new_hw
    t = crop[:, None]
    # Antialiased bilinear: downscaling speckle without aliasing, and deterministic.
    r = F.interpolate(t, size=(nh, nw), mode="bilinear", antialias=True, align_corners=False)
    out = torch.zeros((frames.shape[0], 1, geom.size, geom.size), dtype=torch.float32)
    oy, ox = geom.offset
    out[:, :, oy : oy + nh, ox : ox + nw] = r.clamp_(0, 1)
    return out[:, 0].numpy()


def masked_crop(frames: np.ndarray, geom: Geometry) -> torch.Tensor:
    """The sector's bounding box of uint8 frames [T,H,W], float32 in [0,1], zero outside the sector
    (the same for every canvas size of a clip)."""
    y0, y1, x0, x1 = geom.bbox
    # torch (multi-threaded) instead of numpy: same float32 operations, same result, faster.
    crop = torch.from_numpy(np.ascontiguousarray(frames[:, y0:y1, x0:x1])).float().mul_(1.0 / 255.0)
    return crop.mul_(torch.from_numpy(np.ascontiguousarray(geom.mask[y0:y1, x0:x1])))


def preprocess_clip(frames: np.ndarray, cfg: PreprocessConfig | None = None) -> tuple[np.ndarray, Geometry]:
    """Full pipeline for one clip: returns (float32 [T,size,size] in [0,1], geometry)."""
    x, geom, _crop = _preprocess(to_grey(frames), cfg or PreprocessConfig())
    return x, geom


def _preprocess(f: np.ndarray, cfg: PreprocessConfig) -> tuple[np.ndarray, Geometry, torch.Tensor]:
    geom = geometry_for(find_sector(f, cfg.sector()).mask, cfg.size)
    crop = masked_crop(f, geom)
    return apply_geometry(f, geom, crop), geom, crop


def quantise(x: np.ndarray) -> np.ndarray:
    """Round to the uint8 grid (the training cache stores uint8; inference must match)."""
    y = np.asarray(x, np.float32) * np.float32(255.0)
    np.round(y, out=y)  # in place: the same values as round-then-copy, one pass less over the clip
    y *= np.float32(1.0 / 255.0)
    return y


def normalise_intensity(x: np.ndarray, mode: str) -> np.ndarray:
    """Per-clip gain normalisation of a preprocessed clip (float [T,S,S] in [0,1]).

    ``p99``: divide by the 99th percentile of the clip's non-zero pixels and clip to [0,1] -
    probe gain and depth settings differ between exams, the textures that matter do not.
    """
    if mode == "none":
        return x
    if mode != "p99":
        raise ValueError(f"unknown intensity mode {mode!r}")
    v = x[x > 0]
    if v.size == 0:
        return x
    ref = float(np.percentile(v[:: max(1, v.size // 200_000)], 99))
    out = np.divide(x, np.float32(ref + 1e-3), dtype=np.float32)
    return np.clip(out, 0.0, 1.0, out=out)


def model_input(frames: np.ndarray, cfg: PreprocessConfig) -> tuple[np.ndarray, Geometry]:
    """What the network sees: preprocess, quantise to uint8 steps, normalise intensity."""
    x, geom, _ = model_input_views(frames, cfg)
    return x, geom


def model_input_views(frames: np.ndarray, cfg: PreprocessConfig, hires_size: int = 0
                      ) -> tuple[np.ndarray, Geometry, np.ndarray | None]:
    """:func:`model_input` plus, when ``hires_size`` > 0, the same clip on a larger canvas.

    The sector is detected once and both canvases come from the same geometry, so the two
    views see exactly the same pixels. The larger view is what the clip heads of a
    ``hires`` recipe read (the pleural line is 1-2 px thick on the small canvas).
    """
    steps, geom, xh = model_input_steps(frames, cfg, hires_size)
    return normalise_intensity(dequantise(steps), cfg.intensity), geom, xh


def model_input_steps(frames: np.ndarray, cfg: PreprocessConfig, hires_size: int = 0
                      ) -> tuple[np.ndarray, Geometry, np.ndarray | None]:
    """As :func:`model_input_views`, with the model input as its uint8 steps before the intensity
    normalisation (``normalise_intensity(dequantise(steps), cfg.intensity)`` is the model input, bit
    for bit): a quarter of the bytes, for a prepared clip that is stored."""
    f = to_grey(frames)
    x, geom, crop = _preprocess(f, cfg)
    steps = to_steps(quantise(x))
    xh = None
    if hires_size > 0:
        xh = normalise_intensity(quantise(apply_geometry(f, geometry_for(geom.mask, hires_size), crop)), cfg.intensity)
    return steps, geom, xh


def to_steps(x: np.ndarray) -> np.ndarray:
    """Values on the uint8 grid (what :func:`quantise` returns) -> their steps, uint8."""
    return np.rint(np.asarray(x, np.float32) * np.float32(255.0)).astype(np.uint8)


def dequantise(steps: np.ndarray) -> np.ndarray:
    """uint8 steps -> float32 in [0, 1], the same operations as :func:`quantise` (bit for bit)."""
    y = np.asarray(steps, np.uint8).astype(np.float32)
    y *= np.float32(1.0 / 255.0)
    return y


def canvas_to_original(heat: np.ndarray, geom: Geometry) -> np.ndarray:
    """Map a [size,size] canvas map back onto the original frame grid [H,W] (0 outside)."""
    nh, nw = geom.new_hw
    oy, ox = geom.offset
    sub = heat[oy : oy + nh, ox : ox + nw].astype(np.float32)
    y0, y1, x0, x1 = geom.bbox
    t = torch.from_numpy(np.ascontiguousarray(sub))[None, None]
    r = F.interpolate(t, size=(y1 - y0, x1 - x0), mode="bilinear", align_corners=False)[0, 0].numpy()
    out = np.zeros(geom.orig_shape, np.float32)
    out[y0:y1, x0:x1] = r
    out *= geom.mask
    return out
