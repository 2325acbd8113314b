"""Stage two of the Xing et al. 2022 cascade: three networks vote, frame by frame or clip by clip.

The rule is the product's :func:`scoring.core.inference.bundle.vote` (the ``ensemble`` aggregator
of today's bundles), reused here unchanged and applied to a batch:

* **majority** - at least two members' argmax agree: that class wins (2-1 or 3-0);
* **confident** - all three differ and the most confident member's top probability is >= ``conf``
  (0.8, the paper's threshold): that member's class wins. A tie in top probability goes to the
  member listed first (the members' order is their priority);
* **median** - all three differ and no member reaches ``conf``: the paper leaves this case open;
  the product takes the median of the three classes (ordinal scores: the middle one, never an
  extreme), and so does the cascade.

The returned probabilities are the mean over the members that voted for the winner.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from scoring.core.inference.bundle import vote

#: Threshold of the all-different case (Xing et al. 2022).
VOTE_CONF = 0.8
#: Which rule decided a vote, as :func:`vote_rule` names it.
VOTE_RULES: tuple[str, ...] = ("majority", "confident", "median")


def vote_rule(member_probs: Sequence[np.ndarray], conf: float = VOTE_CONF) -> str:
    """The rule that decides :func:`vote` for these three probability vectors."""
    votes = [int(np.argmax(p)) for p in member_probs]
    if len(set(votes)) < len(votes):
        return "majority"
    return "confident" if max(float(np.max(p)) for p in member_probs) >= conf else "median"


def vote_batch(member_probs: Sequence[np.ndarray], conf: float = VOTE_CONF
               ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Three members' probabilities, each [N, C] -> (voted probabilities [N, C], classes [N],
    the deciding rule per row)."""
    ps = [np.atleast_2d(np.asarray(p, np.float64)) for p in member_probs]
    if len(ps) != 3:
        raise ValueError(f"the cascade votes with exactly three members, got {len(ps)}")
    if len({p.shape for p in ps}) != 1:
        raise ValueError(f"members' probabilities differ in shape: {[p.shape for p in ps]}")
    probs = np.zeros_like(ps[0])
    classes = np.zeros(ps[0].shape[0], int)
    rules: list[str] = []
    for i in range(ps[0].shape[0]):
        row = [p[i] for p in ps]
        probs[i], classes[i] = vote(row, conf)
        rules.append(vote_rule(row, conf))
    return probs, classes, rules
