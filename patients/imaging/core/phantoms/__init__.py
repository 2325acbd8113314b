"""Synthetic lung-ultrasound cine loops with known ground truth, for tests and the demo.

Pure numpy (+ Pillow for burned-in text, pydicom / PyAV for the writers); no Django import.
Modules: ``spec`` (what to render, what comes out), ``plan`` (seeded findings, per-frame truth),
``beam`` (beam-space rendering), ``render`` (geometry, scan conversion, text), ``writers``
(DICOM, MP4).

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

from patients.imaging.core.phantoms.render import phantom_cohort_clip, render_phantom
from patients.imaging.core.phantoms.spec import (
    FINDINGS,
    JPEG_BASELINE,
    US_MULTIFRAME_SOP_CLASS,
    Geometry,
    PhantomClip,
    PhantomSpec,
)
from patients.imaging.core.phantoms.writers import write_dicom, write_mp4

__all__ = [
    "FINDINGS", "JPEG_BASELINE", "US_MULTIFRAME_SOP_CLASS", "Geometry", "PhantomClip", "PhantomSpec",
    "phantom_cohort_clip", "render_phantom", "write_dicom", "write_mp4",
]
