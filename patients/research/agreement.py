"""Agreement between raters of zone scores: the maths, and the pairs a study offers.

The maths (:func:`agreement`) reuses ``scoring.core.stats`` (confusion matrix, quadratic
weighted kappa) so training, evaluation and the platform report the same numbers; the
selectors below pair a study's rater scores with a model's, and every rater with every other
(clinicians, imported raters, the AI's readings) and with the score of record.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from patients.readings.models import ZoneReading
from patients.readings.selectors import open_blind_exams, rater_scores, record_of_study
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

#: The rater name of "the latest clinician reading of each clip, whoever made it" (the former
#: clinicians' overrides), and of the score of record of the zones a clinician read.
CLINICIAN_RATER = "clinician-override"
RECORD_RATER = "record"


class AgreementQueryError(ValueError):
    """A rater or model that the study does not have; the message lists the valid ones."""


@dataclass
class StudyRatings:
    """Every rater's scores of a study's clips: rater -> clip id -> score. Raters: the imported
    ones, each clinician (username), the AI (``model:<version>``), ``clinician-override`` (the
    latest clinician reading of each clip) and ``record`` (the score of record of the zones a
    clinician read; zones still on the AI's score are left out, they would only agree with it)."""

    scores: dict[str, dict[int, int]]
    imported: list[str]
    clinicians: list[str]
    models: list[str]

    @property
    def raters(self) -> list[str]:
        """The choices of the ``rater`` parameter: imported raters, clinicians, all clinicians."""
        return [*self.imported, *self.clinicians, CLINICIAN_RATER]

    @property
    def everyone(self) -> list[str]:
        """Every rater of the pairwise table, the record last."""
        return [*self.imported, *self.clinicians, *self.models, CLINICIAN_RATER, RECORD_RATER]


def study_ratings(*, study: Study, user: Any = None) -> StudyRatings:
    """The study's ratings (a fixed number of queries); exams the user reads blind are left out."""
    blind = open_blind_exams(user=user)
    by_rater = rater_scores(study=study, exclude_exams=blind)
    sources = dict(ZoneReading.objects.filter(clip__exam__patient__study=study).exclude(rater_name="")
                   .values_list("rater_name", "source").distinct())
    kinds: dict[str, list[str]] = {"imported": [], "clinician": [], "ai": []}
    for name in by_rater:
        kinds.setdefault(sources.get(name, ""), []).append(name)
    records = record_of_study(study=study, exclude_exams=blind)
    scores = dict(by_rater)
    scores[CLINICIAN_RATER] = {c: r.clinician_score for c, r in records.items() if r.clinician_score is not None}
    scores[RECORD_RATER] = {c: r.score for c, r in records.items() if r.source == "clinician" and r.score is not None}
    return StudyRatings(scores, kinds["imported"], kinds["clinician"], kinds["ai"])


def agreement_raters(*, study: Study, user: Any = None) -> list[str]:
    """Raters with scores in the study (imported, clinicians), plus all clinicians together."""
    return study_ratings(study=study, user=user).raters


def agreement_models(*, study: Study) -> list[str]:
    """Model versions that scored clips of the study, the active one first, then newest first."""
    return list(ModelVersion.objects.filter(jobs__exam__patient__study=study, jobs__clip_scores__isnull=False)
                .distinct().order_by("-is_active", "-created_at").values_list("version", flat=True))


def model_scores(*, study: Study, model: str, exclude_exams: Any = ()) -> dict[int, int]:
    """clip id -> the newest ``ClipScore`` of ``model`` for each clip of the study."""
    predicted: dict[int, int] = {}
    for clip_id, score in (ClipScore.objects.filter(clip__exam__patient__study=study, model_version__version=model)
                           .exclude(clip__exam_id__in=list(exclude_exams))
                           .order_by("clip_id", "-created_at", "-pk").values_list("clip_id", "score")):
        predicted.setdefault(clip_id, score)
    return predicted


def paired(a: dict[int, int], b: dict[int, int]) -> Agreement:
    """Agreement of two raters over the clips both scored (``confusion[a][b]``)."""
    both = sorted(set(a) & set(b))
    return agreement([a[c] for c in both], [b[c] for c in both])


def pairwise(ratings: StudyRatings) -> list[dict[str, Any]]:
    """Every pair of raters (each against the record included): ``a``, ``b`` and their agreement."""
    names = ratings.everyone
    return [{"a": a, "b": b, **paired(ratings.scores.get(a, {}), ratings.scores.get(b, {})).as_dict()}
            for i, a in enumerate(names) for b in names[i + 1:]]


def agreement_report(*, study: Study, rater: str | None, model: str | None, user: Any = None) -> dict[str, Any]:
    """AI-vs-rater agreement in a study, with the choices available, and ``pairs``: every pair of
    raters (imported, clinicians, the AI's readings, all clinicians, the record).

    ``model`` defaults to the active model version (else the newest that scored the study);
    ``rater`` defaults to the first rater with scores (else the clinicians' readings together).
    """
    ratings = study_ratings(study=study, user=user)
    raters, models = ratings.raters, agreement_models(study=study)
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
    predicted = model_scores(study=study, model=model, exclude_exams=open_blind_exams(user=user))
    result = paired(ratings.scores.get(rater, {}), predicted)
    return {"study": study.pk, "rater": rater, "model": model, "raters": raters, "models": models,
            **result.as_dict(), "everyone": ratings.everyone, "pairs": pairwise(ratings)}
