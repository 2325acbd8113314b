"""The site-training job, run by the worker: the study's signed readings (and, when asked, the
shipped training set) -> features from the cache -> candidate CV, the champion on the same folds
and the learning curve -> the candidate's weights file, registered as a site model of the study.

Claimed with a conditional UPDATE (a duplicate message is harmless); its progress extends a lease,
so a training whose worker died is taken over once the lease expires.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from lusweb.jsonable import jsonable
from patients.audit.models import AuditAction
from patients.audit.services import audit_record
from scoring import runtime
from scoring.core.training.caches import content_sha256, featurize_records
from scoring.core.training.datasets import ClipRecord
from scoring.core.training.run import fit_domain, shipped_records
from scoring.core.training.site import SiteData, site_evaluate, site_fit
from scoring.models import JobStatus, ModelVersion, SiteTraining
from scoring.site.selectors import LabelledClip, labelled_clips

logger = logging.getLogger(__name__)

#: The CV of a site model: the training command's defaults, so the two give the same figures.
CV_SEEDS = (0, 1, 2)
CV_FOLDS = 5


def lease_seconds() -> int:
    return int(getattr(settings, "SITE_TRAINING_LEASE_SECONDS", 300))


def site_training_claim(*, training_id: int, worker: str) -> bool:
    """Take the training: pending, or running with an expired lease (its worker died)."""
    now = timezone.now()
    return bool(SiteTraining.objects.filter(
        Q(status=JobStatus.PENDING) | Q(status=JobStatus.RUNNING, lease_expires_at__lt=now), pk=training_id,
    ).update(status=JobStatus.RUNNING, worker=worker, started_at=now, step="starting", progress=0.0,
             lease_expires_at=now + dt.timedelta(seconds=lease_seconds())))


def _progress(training_id: int, worker: str, fraction: float, step: str) -> None:
    SiteTraining.objects.filter(pk=training_id, worker=worker).update(
        progress=round(min(max(fraction, 0.0), 1.0), 4), step=step[:200],
        lease_expires_at=timezone.now() + dt.timedelta(seconds=lease_seconds()))


def site_training_execute(*, training_id: int, worker: str) -> str:
    """Run a training to its end: 'succeeded', 'failed', or 'skipped' (finished, or another worker
    holds it). Database errors propagate (the task retries them); anything else fails the job
    with a message naming it."""
    if not site_training_claim(training_id=training_id, worker=worker):
        return "skipped"
    training = SiteTraining.objects.select_related("study", "champion", "requested_by").get(pk=training_id)
    try:
        version = _train(training, lambda f, s: _progress(training_id, worker, f, s))
    except (OSError, ValueError, RuntimeError) as exc:
        logger.exception("site training %s failed", training_id)
        SiteTraining.objects.filter(pk=training_id, worker=worker).update(
            status=JobStatus.FAILED, error=f"{exc.__class__.__name__}: {exc}"[:2000], step="failed",
            finished_at=timezone.now(), lease_expires_at=None)
        return "failed"
    with transaction.atomic():
        SiteTraining.objects.filter(pk=training_id, worker=worker).update(
            status=JobStatus.SUCCEEDED, candidate=version, progress=1.0, step="done", finished_at=timezone.now(),
            lease_expires_at=None, result=version.metadata.get("site", {}))
        audit_record(actor=training.requested_by, action=AuditAction.CREATE, study=training.study,
                     object_type="site_model", object_id=version.version,
                     changes={"trained": {"job": training_id, "cv_accuracy": _mean(version.metadata, "cv"),
                                          "champion": training.champion.version}})
    return "succeeded"


def _mean(meta: dict[str, Any], key: str) -> float | None:
    block = meta.get(key) or {}
    value = block.get("accuracy") if isinstance(block, dict) else None
    return round(float(value["mean"]), 4) if isinstance(value, dict) else None


def site_records(clips: list[LabelledClip]) -> list[ClipRecord]:
    """Training records of labelled clips: the reading's findings where it has them, else unknown."""
    return [ClipRecord(c.path, c.patient, "site", c.score,
                       {k: int(bool(v)) for k, v in c.findings.items()}, c.zone) for c in clips]


def _train(training: SiteTraining, progress: Any) -> ModelVersion:
    study = training.study
    clips = labelled_clips(study=study)
    champion = runtime.get_scorer(training.champion.weights)
    if str(champion.version) != training.champion.version:
        raise RuntimeError(f"the worker loaded {champion.version!r} for the champion {training.champion.version!r}")
    recs = site_records(clips)
    site_hashes = {c.sha256 for c in clips}
    pooled: list[ClipRecord] = []
    if training.include_shipped:
        # The same clip in both sets would sit in a test fold and in its training folds.
        pooled = [r for r in shipped_records(champion.meta) if content_sha256(r.path) not in site_hashes]
    all_recs = recs + pooled
    progress(0.0, f"features of {len(all_recs)} clips")
    feats = featurize_records(all_recs, champion.recipe, fz=champion.featurizer,
                              log=lambda m: progress(0.4 * _done(m, len(all_recs)), m))
    seen = _champion_saw(champion.meta, [c.sha256 for c in clips])
    data = SiteData(feats, np.array([r.score for r in all_recs]), np.stack([r.findings_vector() for r in all_recs]),
                    [r.patient for r in all_recs], np.array([r.source == "site" for r in all_recs]),
                    None if seen is None else np.array(seen + [False] * len(pooled)))
    report = site_evaluate(data, champion.recipe, champion.bundle.predict, CV_SEEDS, CV_FOLDS,
                           progress=lambda f, s: progress(0.4 + 0.55 * f, s))
    progress(0.96, "final fit on every labelled clip")
    bundle = site_fit(data, champion.recipe)
    bundle.backbone_state = dict(champion.bundle.backbone_state)
    fit_domain(bundle, feats, data.groups, np.ones(len(feats), bool))
    bundle.meta = _metadata(training, champion.meta, clips, pooled, report)
    return site_model_register(state=bundle.to_state(), meta=bundle.meta, study=study)


def _done(message: str, total: int) -> float:
    """The fraction featurised from a ``featurised i/n clips`` log line."""
    try:
        return int(message.split()[1].split("/")[0]) / max(total, 1)
    except (IndexError, ValueError):
        return 0.0


def _champion_saw(meta: dict[str, Any], hashes: list[str]) -> list[bool] | None:
    """Which site clips the champion was trained on (by content): from its weights' list, else (a
    shipped model trained before the list existed) by hashing its training clips in the data
    folder; None when neither is available (the report then says it is unknown)."""
    known = meta.get("training_clip_sha256")
    if not isinstance(known, list):
        try:
            known = [content_sha256(r.path) for r in shipped_records(meta)]
        except ValueError:
            return None
    seen = set(known)
    return [h in seen for h in hashes]


def _metadata(training: SiteTraining, champion: dict[str, Any], clips: list[LabelledClip], pooled: list[ClipRecord],
              report: dict[str, Any]) -> dict[str, Any]:
    study = training.study
    stamp = timezone.now().strftime("%Y%m%dT%H%M%S")
    meta = {key: champion.get(key) for key in ("recipe", "preprocess", "classes", "findings", "backbone_file",
                                               "backbone_sha256")}
    patients = sorted({c.patient for c in clips})
    meta.update({
        "version": f"site-s{study.pk}-{stamp}-j{training.pk}",
        "architecture": f"{champion.get('architecture')}; heads retrained on study {study.name!r}'s signed readings",
        "mode": "site",
        "training_patients": patients + sorted({r.patient for r in pooled}),
        "training_clips": len(clips) + len(pooled),
        "training_clip_sha256": sorted({c.sha256 for c in clips} | {content_sha256(r.path) for r in pooled}),
        "cv": report["cv"],
        "site": {"study": study.pk, "study_name": study.name, "job": training.pk, "champion": training.champion.version,
                 "champion_cv": report["champion_cv"], "learning_curve": report["learning_curve"],
                 "include_shipped": training.include_shipped, "site_clips": len(clips), "site_patients": len(patients),
                 "pooled_clips": len(pooled),
                 "trained_by": training.requested_by.get_username() if training.requested_by else None},
        "seed": 0, "command": f"site training job {training.pk} (scoring.site.training)",
        "torch": str(torch.__version__),
    })
    return json.loads(json.dumps(meta, default=lambda o: o.item() if hasattr(o, "item") else str(o)))  # type: ignore[no-any-return]


def site_model_register(*, state: dict[str, Any], meta: dict[str, Any], study: Any) -> ModelVersion:
    """Write the weights file under ``SITE_MODELS_DIR`` and register its model version, both or
    neither: the file is written beside its final name, the row created, and only then is the file
    moved into place (a reader never sees half a file); when the row cannot be created, or the
    move fails and rolls the row back, no file is left behind and an existing file of that name
    is untouched."""
    version = str(meta["version"])
    folder = Path(settings.SITE_MODELS_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{version}.pt"
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    try:
        with transaction.atomic():
            registered = ModelVersion.objects.create(version=version, weights=str(path), metadata=jsonable(meta),
                                                     study=study)
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return registered
