"""The seeded plan of a phantom's findings, and the per-frame ground truth it implies."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from patients.imaging.core.phantoms.spec import PhantomSpec


@dataclass(frozen=True)
class Plan:
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


def make_plan(spec: PhantomSpec, rng: np.random.Generator) -> Plan:
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
    return Plan(pleura=pleura, effusion_depth=effusion_depth, phase=phase, sliding=sliding, b_u0=b_u0,
                 b_visible=b_visible, confluent=confluent, consolidation=consolidation,
                 cons_u=float(rng.uniform(0.3, 0.7)))


def frame_truth(spec: PhantomSpec, plan: Plan) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
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
