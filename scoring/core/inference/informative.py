"""Which unread clips would teach the scorer most once a clinician labels them: the review worklist's
"most informative first" order (uncertainty sampling with a diversity term).

* **Uncertainty**: the normalised entropy of the AI's four clip probabilities
  (:func:`scoring.core.stats.normalised_entropy`; 0 = sure, 1 = the four scores equally likely).
  Entropy rather than 1 - max p: 1 - max p looks at the top score only, so a doubt between two
  neighbouring scores, (0.5, 0.5, 0, 0), and a clip the model can place nowhere, (0.5, 0.2, 0.2,
  0.1), both count 0.5; entropy tells them apart (0.50 and 0.88), and the label of the second
  corrects more of what the model predicts. It is the usual uncertainty-sampling measure.
* **Novelty**: how unlike the clips already labelled a clip is, so that the labels do not go to
  near-copies of one unsure pattern. Best: the distance of the clip's CNN descriptor to the
  nearest labelled clip (:func:`clip_descriptor`, :func:`nearest_distances`). Without descriptors
  the caller passes the out-of-domain distance to the training clips instead.
* **Informativeness**: the mean of the two percentile ranks among the candidate clips
  (:func:`rank_average`). Ranks carry no unit, so an entropy (0..1) and a distance (unbounded)
  weigh the same, and one extreme value cannot swamp the other part.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from scoring.core.labels import FINDINGS
from scoring.core.stats import percentile_ranks

#: Where the pooled frame features start in a zone feature vector: after the scorer's read-out, 4
#: class probabilities and the findings (``scoring.core.severity.features.HEAD_FINDINGS.stop``; a
#: test keeps them equal - that module loads torch, which the web process does not).
READOUT = 4 + len(FINDINGS)


@dataclass(frozen=True)
class Informativeness:
    """One candidate clip: its two parts, their percentile ranks and their mean (``value``)."""

    uncertainty: float
    uncertainty_rank: float
    novelty: float | None  # None: unknown (ranks 0)
    novelty_rank: float
    value: float


def clip_descriptor(sets: np.ndarray | None) -> np.ndarray | None:
    """What the CNN saw of a clip, from its stored zone feature sets ``[sets, D]`` (or one vector):
    the pooled frame features with the read-out left out - the read-out is the AI's opinion, not
    the image - averaged over the sets. None when there are no pooled features."""
    if sets is None:
        return None
    arr = np.asarray(sets, np.float64)
    if arr.ndim not in (1, 2) or arr.shape[-1] <= READOUT or not arr.size or not np.all(np.isfinite(arr)):
        return None
    return np.atleast_2d(arr)[:, READOUT:].mean(0)


def nearest_distances(candidates: np.ndarray, labelled: np.ndarray) -> np.ndarray:
    """Distance of each candidate descriptor ``[N, D]`` to its nearest labelled one ``[M, D]``.

    Each feature is standardised over both sets together (z-scores, so that no feature weighs by its
    scale alone; a constant feature is left out) and the Euclidean distance is divided by the square
    root of the number of features kept: the root-mean-square difference in standard deviations.
    Raises ValueError when there is no labelled descriptor or the widths differ."""
    c = np.atleast_2d(np.asarray(candidates, np.float64))
    ref = np.atleast_2d(np.asarray(labelled, np.float64))
    if not ref.size or c.shape[1] != ref.shape[1]:
        raise ValueError(f"need labelled descriptors as wide as the candidates; got {ref.shape} and {c.shape}")
    both = np.vstack([c, ref])
    sd = both.std(0)
    keep = sd > 1e-8
    if not keep.any():
        return np.zeros(len(c))
    mu = both.mean(0)
    zc = (c[:, keep] - mu[keep]) / sd[keep]
    zr = (ref[:, keep] - mu[keep]) / sd[keep]
    # |a - b|^2 = |a|^2 + |b|^2 - 2 a.b: no [N, M, D] array (a study holds thousands of clips).
    d2 = (zc ** 2).sum(1)[:, None] + (zr ** 2).sum(1)[None, :] - 2.0 * zc @ zr.T
    return np.asarray(np.sqrt(np.maximum(d2.min(1), 0.0) / keep.sum()))


def rank_average(uncertainty: Sequence[float], novelty: Sequence[float | None]) -> list[Informativeness]:
    """Each candidate's informativeness: the mean of its uncertainty's and its novelty's percentile
    ranks among the candidates (1.0 = the highest of all). An unknown novelty (None) ranks 0 - there
    is no evidence that the clip is new - and the known ones rank above every unknown one."""
    if len(uncertainty) != len(novelty):
        raise ValueError(f"{len(uncertainty)} uncertainties but {len(novelty)} novelties")
    n = len(uncertainty)
    u_ranks = percentile_ranks(uncertainty)
    known = [i for i, v in enumerate(novelty) if v is not None]
    n_ranks = [0.0] * n
    # Rank r among the k known values is r / k here; among all n, with the unknown ones below, it is
    # (n - k + r) / n.
    for i, pr in zip(known, percentile_ranks([float(novelty[i]) for i in known]), strict=True):  # type: ignore[arg-type]
        n_ranks[i] = (n - len(known) + pr * len(known)) / n
    return [Informativeness(float(uncertainty[i]), u_ranks[i], novelty[i], n_ranks[i], (u_ranks[i] + n_ranks[i]) / 2)
            for i in range(n)]
