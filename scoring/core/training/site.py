"""Site training: a candidate model from a ward's own signed readings, judged against the model
in use (the champion) on the same patient-grouped folds, with a learning curve.

Pure Python (no Django): the worker job (``scoring.site_models``) gathers the labelled clips and
calls :func:`site_evaluate` and :func:`site_fit`.

* **Candidate CV** is exactly :func:`scoring.core.training.cv.cross_validate` (same folds, same
  fitting, same metrics), so it equals the training command's figure on the same clips.
* **Champion on the same folds**: the model in use does not retrain; its predictions on each test
  fold are scored with the same metrics. When it was trained on some of the site's clips (the
  shipped model on a COVID-BLUES study) its figures are in-sample and the report says how many
  clips it saw.
* **Learning curve**: the test folds stay fixed; the site's training patients of each fold are
  subsampled to 25/50/75/100 % (seeded), so the points differ only in how many labelled patients
  trained the candidate. Does the site gain from more labels? The slope says.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from scoring.core.features.recipe import Recipe
from scoring.core.inference.bundle import Bundle
from scoring.core.training.cv import cv_splits, cv_summary, fit_with_noise_filter, seed_report

#: Fewest patients with signed readings a site model is trained from: five folds of two.
MIN_SITE_PATIENTS = 10
#: Fewest distinct scores among the signed readings (a model of one class learns nothing).
MIN_SITE_CLASSES = 2
#: Fractions of the site's training patients of the learning curve.
CURVE_FRACTIONS = (0.25, 0.5, 0.75, 1.0)

Progress = Callable[[float, str], None]


class SiteDataError(ValueError):
    """The labelled clips cannot train and cross-validate a site model (the message says why)."""


@dataclass
class SiteData:
    """Labelled clips: features (``featurize_records``), Soldati labels, findings, patient of each,
    whether it is a site clip (else a pooled shipped clip, always in training) and whether the
    champion saw it in training (None: unknown)."""

    feats: list[dict[str, np.ndarray]]
    y: np.ndarray
    findings: np.ndarray
    groups: list[str]
    site: np.ndarray
    champion_saw: np.ndarray | None

    @property
    def site_patients(self) -> list[str]:
        return sorted({g for g, s in zip(self.groups, self.site, strict=True) if s})


def site_data_check(groups: Sequence[str], y: Sequence[int]) -> None:
    """Raise :class:`SiteDataError` naming what is missing when the site's labelled clips are too few."""
    patients = len(set(groups))
    if patients < MIN_SITE_PATIENTS:
        raise SiteDataError(
            f"{patients} patient{'s' if patients != 1 else ''} with signed readings ({len(y)} clips); a site model "
            f"needs at least {MIN_SITE_PATIENTS} to cross-validate (5 folds of 2 patients): sign more exams")
    classes = sorted({int(v) for v in y})
    if len(classes) < MIN_SITE_CLASSES:
        raise SiteDataError(f"every signed reading has score {classes[0]}; a site model needs at least two scores")


def site_evaluate(data: SiteData, recipe: Recipe, champion: Callable[[dict[str, np.ndarray]], dict[str, object]],
                  seeds: Sequence[int] = (0, 1, 2), k: int = 5, fractions: Sequence[float] = CURVE_FRACTIONS,
                  progress: Progress | None = None) -> dict[str, object]:
    """Candidate CV, the champion on the same folds and the learning curve (see the module)."""
    site_data_check([g for g, s in zip(data.groups, data.site, strict=True) if s], data.y[data.site])
    y = np.asarray(data.y, int)
    em = np.asarray(data.site, bool)
    site_idx = np.nonzero(em)[0]
    champ = {int(i): champion(data.feats[i]) for i in site_idx}
    per_fraction: dict[float, list[dict[str, object]]] = {f: [] for f in fractions}
    champion_reports = []
    steps = len(seeds) * k * len(fractions)
    done = 0
    for seed in seeds:
        outs: dict[float, dict[int, dict[str, object]]] = {f: {} for f in fractions}
        for fold, (tr_idx, te_idx) in enumerate(cv_splits(y, data.groups, em, k, seed)):
            for f in fractions:
                sub = _subsample(tr_idx, data, f, seed * 1000 + fold)
                b, _ = fit_with_noise_filter([data.feats[i] for i in sub], y[sub], data.findings[sub],
                                             [data.groups[i] for i in sub], recipe, seed, frame_heads=False)
                outs[f].update({int(i): b.predict(data.feats[i]) for i in te_idx})
                done += 1
                if progress:
                    progress(done / steps, f"cross-validation: seed {seed}, fold {fold + 1}/{k}, "
                                           f"{round(f * 100)} % of the training patients")
        for f in fractions:
            per_fraction[f].append(seed_report(y, site_idx, outs[f]))
        champion_reports.append(seed_report(y, site_idx, champ))
    n_clips, n_patients = int(em.sum()), len(data.site_patients)
    cv = cv_summary(per_fraction[max(fractions)], seeds, k, n_clips, n_patients)
    champion_cv = cv_summary(champion_reports, seeds, k, n_clips, n_patients)
    seen = None if data.champion_saw is None else int(np.asarray(data.champion_saw, bool)[em].sum())
    # In-sample figures flatter the champion: the report says so, or that it cannot tell.
    champion_cv["clips_seen_in_training"] = seen
    champion_cv["in_sample"] = None if seen is None else seen > 0
    curve = [{"fraction": f, "patients": max(1, round(f * n_patients)),
              **{m: cv_summary(per_fraction[f], seeds, k, n_clips, n_patients)[m]
                 for m in ("accuracy", "within1", "spearman_expected", "qwk")}} for f in fractions]
    return {"cv": cv, "champion_cv": champion_cv, "learning_curve": curve,
            "pooled_clips": int((~em).sum()), "site_clips": n_clips, "site_patients": n_patients}


def _subsample(tr_idx: np.ndarray, data: SiteData, fraction: float, seed: int) -> np.ndarray:
    """The training clips of a fold with only ``fraction`` of its site patients (all pooled clips)."""
    if fraction >= 1.0:
        return tr_idx
    patients = sorted({data.groups[i] for i in tr_idx if data.site[i]})
    keep_n = max(2, round(fraction * len(patients)))
    keep = set(np.random.default_rng(seed).choice(patients, size=min(keep_n, len(patients)), replace=False).tolist())
    return np.array([i for i in tr_idx if not data.site[i] or data.groups[i] in keep], int)


def site_fit(data: SiteData, recipe: Recipe, seed: int = 0) -> Bundle:
    """The candidate trained on every labelled clip (site and pooled)."""
    bundle, _ = fit_with_noise_filter(data.feats, np.asarray(data.y, int), data.findings, data.groups, recipe, seed)
    return bundle
