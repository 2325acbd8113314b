"""What a phantom is asked to be (:class:`PhantomSpec`) and what it is (:class:`PhantomClip`)."""
from __future__ import annotations

from dataclasses import dataclass, field
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
