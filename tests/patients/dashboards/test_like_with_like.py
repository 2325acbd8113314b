"""Normalised scores and like-with-like change: the numbers the timeline and overview show."""
from __future__ import annotations

import datetime as dt

from patients.dashboards import stats
from patients.studies.protocols import get_protocol

T0 = dt.datetime(2026, 3, 1, 8, tzinfo=dt.UTC)
TWELVE = get_protocol("12-zone")
BLUE = get_protocol("blue-6")


def h(hours: float) -> dt.datetime:
    return T0 + dt.timedelta(hours=hours)


def sites(protocol_key: str, scores: dict[str, int | None]) -> dict[str, int | None]:
    p = get_protocol(protocol_key)
    return {p.zone(code).site: v for code, v in scores.items()}


def test_normalised_score_and_coverage() -> None:
    assert stats.normalised(9, 18) == 0.5
    assert stats.normalised(18, 36) == 0.5
    assert stats.normalised(27, 36) == 0.75
    assert stats.normalised(None, 36) is None and stats.normalised(3, 0) is None
    assert stats.coverage_text(8, 12) == "8/12 zones"
    assert TWELVE.max_score == 36 and BLUE.max_score == 18
    assert BLUE.column("R3") == "blue-6:R3"


def test_blue_plaps_point_is_the_twelve_zone_lateral_lower_site() -> None:
    assert BLUE.zone("R3").label == "Right PLAPS point"
    assert BLUE.zone("R3").site == TWELVE.zone("R4").site == "right-lateral-lower"
    assert BLUE.zone("R3").site != TWELVE.zone("R3").site


def test_like_change_uses_only_zones_scored_at_both() -> None:
    before = {"R1": 2, "R2": 3, "R3": 1, "L1": None, "L2": 2}
    after = {"R1": 3, "R2": 3, "L1": 2, "L2": 0}  # R3 missing now, L1 missing before
    c = stats.like_change(before, after)
    assert c.zones == 3  # R1, R2, L2
    assert (c.before, c.after, c.delta) == (7.0, 6.0, -1.0)
    assert c.mean_before is not None and c.mean_after is not None
    assert round(c.mean_before, 4) == round(7 / 3, 4) and c.mean_after == 2.0
    none = stats.like_change({"R1": 1}, {"L1": 1})
    assert none.zones == 0 and none.delta is None and none.mean_after is None


def _twelve(scores: list[int | None], key: str, hours: float) -> stats.ExamSummary:
    zones = dict(zip(TWELVE.codes, scores))
    known = [v for v in scores if v is not None]
    return stats.ExamSummary(key, h(hours), float(sum(known)), sites("12-zone", zones), max_luss=36,
                             expected=12, names={TWELVE.zone(c).site: c for c in TWELVE.codes})


def test_missing_zones_never_make_a_flag_or_an_improvement() -> None:
    # The case: 22 of 36 with 12 zones, then 16 with only 8 zones scanned.
    full = _twelve([2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1], "full", 0)  # 22
    partial = _twelve([2, 2, 2, 2, None, None, 2, 2, 2, 2, None, None], "partial", 24)  # 16, 8 zones
    assert (full.luss, partial.luss) == (22.0, 16.0)
    assert stats.exam_flags([full, partial], threshold=18, scale=36) == []
    tr, change = stats.like_trend(full, partial)
    assert change is not None and change.zones == 8 and (change.before, change.after) == (16.0, 16.0)
    assert (tr.delta, tr.arrow, tr.direction) == (0.0, "→", "same")


def test_real_change_on_common_zones_still_flags() -> None:
    full = _twelve([1] * 12, "full", 0)  # 12: mean 1.0
    partial = _twelve([2, 2, 2, 3, None, None, 2, 2, 2, 2, None, None], "partial", 24)  # mean 2.125 on 8
    flags = stats.exam_flags([full, partial], threshold=18, scale=36)
    kinds = [f.kind for f in flags]
    assert kinds == ["zone_worsened", "threshold_up"]
    assert flags[0].zones == ("R4",)
    assert "over the 8 zones scored at both exams rose to 2.12 (≥ 1.50) from 1.00" in flags[1].text
    tr, change = stats.like_trend(full, partial)
    assert change is not None and tr.delta == 9.0 and tr.direction == "worse"


def test_threshold_follows_each_protocol() -> None:
    # Complete BLUE-6 exams (max 18) in a 12-zone study (threshold 18 of 36 = half the maximum):
    # a BLUE-6 exam crosses at 9, not 18.
    def blue(scores: list[int], key: str, hours: float) -> stats.ExamSummary:
        return stats.ExamSummary(key, h(hours), float(sum(scores)), sites("blue-6", dict(zip(BLUE.codes, scores))),
                                 max_luss=18, expected=6)
    flags = stats.exam_flags([blue([1, 1, 1, 1, 1, 1], "a", 0), blue([2, 2, 2, 1, 1, 1], "b", 24)],
                             threshold=18, scale=36)
    assert [(f.kind, f.text) for f in flags] == [("threshold_up", "global score rose to 9 (≥ 9) from 6")]


def test_blue_then_twelve_compares_the_shared_sites() -> None:
    blue_exam = stats.ExamSummary("b", h(0), 6.0, sites("blue-6", dict(zip(BLUE.codes, [1] * 6))),
                                  max_luss=18, expected=6)
    twelve = _twelve([1, 1, 3, 1, 3, 3, 1, 1, 3, 1, 3, 3], "t", 24)  # 3s only where BLUE has no point
    assert stats.like_change(blue_exam.zones, twelve.zones).zones == 6
    tr, change = stats.like_trend(blue_exam, twelve)
    assert change is not None and tr.delta == 0.0
    assert stats.exam_flags([blue_exam, twelve], threshold=18, scale=36) == []
