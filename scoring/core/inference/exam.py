"""Exam-level scores from per-zone clip scores.

A zone that was not scanned (or whose clip could not be scored) is *missing*: it is listed
and lowers the coverage, but it is **never counted as 0** - the global score is the sum over
the present zones and the maximum attainable is reported beside it, so a partial exam is not
mistaken for a healthy one.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

#: 12-zone protocol (6 per side) and the 6 BLUE points of COVID-BLUES.
ZONES_12: tuple[str, ...] = tuple(f"{s}{i}" for s in "RL" for i in range(1, 7))
ZONES_BLUE6: tuple[str, ...] = ("R1", "R2", "R3", "L1", "L2", "L3")
MAX_ZONE_SCORE = 3


@dataclass
class ExamScore:
    """Summary of one exam."""

    global_score: int  # sum of the present zones' scores
    max_score: int  # 3 x number of expected zones (36 for 12 zones, 18 for BLUE-6)
    mean_zone_score: float | None  # over present zones; None when no zone is present
    worst_zone: str | None
    worst_score: int | None
    zones_ge2: list[str] = field(default_factory=list)  # zones scoring >= 2
    present: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    coverage: float = 0.0  # present / expected

    def to_dict(self) -> dict[str, object]:
        """JSON-friendly dict."""
        return asdict(self)


def exam_score(zone_scores: Mapping[str, int | None], expected: Sequence[str] | None = None) -> ExamScore:
    """Compute the exam summary.

    ``zone_scores``: zone name -> clip score 0..3 (``None`` = not available).
    ``expected``: the protocol's zones; defaults to ZONES_12 when every given zone is one of
    them... more precisely: BLUE-6 if all present zone names are in BLUE-6 and there are at most
    6, else the 12-zone protocol, else the given zones themselves.
    """
    given = dict(zone_scores.items())
    if expected is None:
        names = set(given)
        if names <= set(ZONES_BLUE6):
            expected = ZONES_BLUE6
        elif names <= set(ZONES_12):
            expected = ZONES_12
        else:
            expected = sorted(names)
    exp = list(dict.fromkeys(expected))
    present: list[str] = []
    for z in exp:
        s = given.get(z)
        if s is None:
            continue
        if not 0 <= int(s) <= MAX_ZONE_SCORE:
            raise ValueError(f"zone {z}: score {s} outside 0..{MAX_ZONE_SCORE}")
        present.append(z)
    extra = [z for z in given if z not in exp and given[z] is not None]
    if extra:
        raise ValueError(f"zones {extra} are not in the expected protocol {exp}")
    missing = [z for z in exp if z not in present]
    scores = {z: int(given[z]) for z in present}  # type: ignore[arg-type]
    total = sum(scores.values())
    worst = max(present, key=lambda z: (scores[z], -exp.index(z))) if present else None
    return ExamScore(
        global_score=total,
        max_score=MAX_ZONE_SCORE * len(exp),
        mean_zone_score=(total / len(present)) if present else None,
        worst_zone=worst,
        worst_score=scores[worst] if worst is not None else None,
        zones_ge2=[z for z in present if scores[z] >= 2],
        present=present,
        missing=missing,
        coverage=len(present) / len(exp) if exp else 0.0,
    )
