"""What readings needs from the layers above it, supplied by them at start-up.

An override's audit records the score it replaces: the previous override, else the AI's current
score of the clip. Scores belong to the scoring app, which sits above readings, so scoring
registers the source in ``ScoringConfig.ready`` instead of readings importing it. Without a
registered source there is no AI score (``None``).
"""
from __future__ import annotations

from collections.abc import Callable

from patients.imaging.models import ZoneClip

AiScoreSource = Callable[[ZoneClip], int | None]

_ai_score_source: list[AiScoreSource] = []


def register_ai_score_source(source: AiScoreSource) -> None:
    """Make ``source(clip)`` the AI's current score of a clip (0-3, or None when not scored).
    Registering again replaces the previous source."""
    _ai_score_source[:] = [source]


def ai_score(clip: ZoneClip) -> int | None:
    """The AI's current score of ``clip``: None when it is not scored or no source is registered."""
    return _ai_score_source[0](clip) if _ai_score_source else None
