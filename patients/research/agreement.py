"""Agreement of the AI's zone scores with a rater's: the maths, and the pairs a study offers.

The maths (:func:`agreement`) reuses ``scoring.core.stats`` (confusion matrix, quadratic
weighted kappa) so training, evaluation and the platform report the same numbers; the
selectors below pair a study's rater scores with a model's.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from patients.readings.selectors import OVERRIDE_RATER, annotation_raters, annotation_scores, override_scores
from patients.studies.models import Study
from scoring.core.stats import confusion, quadratic_kappa
from scoring.models import ClipScore, ModelVersion

N_CLASSES = 4


@dataclass(frozen=True)
class Agreement:
    """``confusion[r][m]``: zones the rater scored ``r`` and the model ``m``."""

    n: int
    accuracy: float | None
    within1: float | None
    qwk: float | None
    confusion: list[list[int]]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def agreement(rater: Sequence[int], model: Sequence[int]) -> Agreement:
    """Exact agreement, agreement within one point, quadratic weighted kappa and the 4x4 confusion
    matrix of paired Soldati scores (0-3). With no pairs the rates are None."""
    if len(rater) != len(model):
        raise ValueError(f"{len(rater)} rater scores but {len(model)} model scores")
    for value in (*rater, *model):
        if not 0 <= int(value) < N_CLASSES:
            raise ValueError(f"score {value!r} is outside 0-{N_CLASSES - 1}")
    n = len(rater)
    matrix = confusion(rater, model, N_CLASSES).tolist()
    if n == 0:
        return Agreement(0, None, None, None, matrix)
    exact = sum(1 for r, m in zip(rater, model, strict=True) if int(r) == int(m))
    near = sum(1 for r, m in zip(rater, model, strict=True) if abs(int(r) - int(m)) <= 1)
    return Agreement(n, exact / n, near / n, quadratic_kappa(rater, model, N_CLASSES), matrix)


# --- a study's pairs -----------------------------------------------------------------------------


class AgreementQueryError(ValueError):
    """A rater or model that the study does not have; the message lists the valid ones."""


def agreement_raters(*, study: Study) -> list[str]:
    """Raters with scored annotations in the study, plus the clinicians' overrides."""
    return [*annotation_raters(study=study), OVERRIDE_RATER]


def agreement_models(*, study: Study) -> list[str]:
    """Model versions that scored clips of the study, the active one first, then newest first."""
    return list(ModelVersion.objects.filter(jobs__exam__patient__study=study, jobs__clip_scores__isnull=False)
                .distinct().order_by("-is_active", "-created_at").values_list("version", flat=True))


def agreement_pairs(*, study: Study, rater: str, model: str) -> list[tuple[int, int, int]]:
    """(clip id, rater score, model score) for every clip of the study both scored.

    The model score is the newest ``ClipScore`` of that model version for the clip; the rater
    score is the rater's annotation, or for ``clinician-override`` the latest override.
    """
    reference = (override_scores(study=study) if rater == OVERRIDE_RATER
                 else annotation_scores(study=study, rater=rater))
    predicted: dict[int, int] = {}
    for clip_id, score in (ClipScore.objects.filter(clip__exam__patient__study=study, model_version__version=model)
                           .order_by("clip_id", "-created_at", "-pk").values_list("clip_id", "score")):
        predicted.setdefault(clip_id, score)
    return [(cid, reference[cid], predicted[cid]) for cid in sorted(reference) if cid in predicted]


def agreement_report(*, study: Study, rater: str | None, model: str | None) -> dict[str, Any]:
    """AI-vs-rater agreement in a study, with the choices available.

    ``model`` defaults to the active model version (else the newest that scored the study);
    ``rater`` defaults to the first rater with annotations (else the clinicians' overrides).
    """
    raters = agreement_raters(study=study)
    models = agreement_models(study=study)
    rater = (rater or "").strip() or raters[0]
    if rater not in raters:
        raise AgreementQueryError(f"rater={rater!r} has no scores in this study; raters: {', '.join(raters)}")
    model = (model or "").strip() or None
    if model is None:
        if not models:
            raise AgreementQueryError("no model has scored this study yet; score its exams first")
        model = models[0]
    elif model not in models:
        raise AgreementQueryError(
            f"model={model!r} has not scored this study; models: {', '.join(models) or 'none'}")
    pairs = agreement_pairs(study=study, rater=rater, model=model)
    result = agreement([r for _, r, _ in pairs], [m for _, _, m in pairs])
    return {"study": study.pk, "rater": rater, "model": model, "raters": raters, "models": models,
            **result.as_dict()}
