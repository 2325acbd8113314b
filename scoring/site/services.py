"""Site-model writes: ask for a training, promote a candidate, roll back. Study admins only; every
step is audited. The training itself runs in the worker (:mod:`scoring.site.training`)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from lusweb.broker import task_send
from lusweb.errors import ServiceError
from lusweb.jsonable import jsonable
from patients.audit.models import AuditAction
from patients.audit.services import audit_record
from patients.records.models import Exam
from patients.studies import permissions
from patients.studies.models import Study
from scoring.core.training.site import MIN_SITE_PATIENTS, SiteDataError, site_data_check
from scoring.models import ClipScore, JobStatus, ModelVersion, ScoringJob, SiteTraining, StudyModel
from scoring.pipeline import ai_reading_of
from scoring.services import model_version_for, scoring_job_request
from scoring.site.selectors import labelled_clips
from scoring.study_model import network_arch, study_model_id

#: The Celery task that runs a training (``scoring.tasks.site_model_train``), on the bulk queue:
#: a clinician's upload or review goes first.
SITE_TRAIN_TASK = "scoring.tasks.site_model_train"
SITE_TRAIN_QUEUE = "gpu-bulk"

__all__ = ["MIN_SITE_PATIENTS", "site_model_promote", "site_model_rollback", "site_training_request",
           "site_trainings_recover", "study_model_choose", "study_model_switch", "MODEL_ACTIONS"]


def _dispatch(training_id: int) -> None:
    sent = task_send(SITE_TRAIN_TASK, args=(training_id,), queue=SITE_TRAIN_QUEUE)
    SiteTraining.objects.filter(pk=training_id).update(dispatched_at=timezone.now() if sent else None)


def site_trainings_recover() -> int:
    """Send again the trainings whose message may be lost: pending and never sent (the broker was
    down), or running with an expired lease (the worker died). The claim makes a duplicate harmless."""
    now = timezone.now()
    stale = list(SiteTraining.objects.filter(
        Q(status=JobStatus.PENDING, dispatched_at__isnull=True) | Q(status=JobStatus.RUNNING, lease_expires_at__lt=now)
    ).values_list("pk", flat=True))
    for training_id in stale:
        _dispatch(training_id)
    return len(stale)


def site_training_request(*, study: Study, by: Any, include_shipped: bool = False) -> SiteTraining:
    """Ask the worker to train a site model from the study's signed readings (optionally pooled with
    the shipped training set). Refused, naming the reason, when the readings are too few to
    cross-validate or a training of the study is already waiting or running."""
    permissions.require_admin(by, study)
    champion = model_version_for(study=study)
    if network_arch(champion) is not None:
        # A site model retrains the Lite0 scorer's heads on its frozen features; a network has neither.
        raise ServiceError(f"site models retrain the heads of a Lite0 scorer, and the study scores with "
                           f"{champion.version!r} ({network_arch(champion)}); choose a Lite0 model (the shipped "
                           "default) for the study first", code="champion_not_lite0")
    clips = labelled_clips(study=study)
    try:
        site_data_check([c.patient for c in clips], [c.score for c in clips])
    except SiteDataError as exc:
        raise ServiceError(str(exc), code="too_few_readings") from None
    with transaction.atomic():
        Study.objects.select_for_update().filter(pk=study.pk).first()  # one request at a time per study
        busy = SiteTraining.objects.filter(study=study, status__in=[JobStatus.PENDING, JobStatus.RUNNING]).first()
        if busy is not None:
            raise ServiceError(f"training {busy.pk} of this study is {busy.status}; wait for it to finish",
                               code="training_busy", status=409)
        training = SiteTraining.objects.create(study=study, include_shipped=include_shipped, requested_by=by,
                                               champion=champion, step="queued")
        audit_record(actor=by, action=AuditAction.CREATE, study=study, obj=training,
                     changes={"site_training": {"include_shipped": include_shipped, "champion": training.champion.version,
                                                "clips": len(clips), "patients": len({c.patient for c in clips})}})
        training_id = training.pk
        transaction.on_commit(lambda: _dispatch(training_id), robust=True)
    return training


def _set_study_model(*, study: Study, version: ModelVersion, by: Any, action: str) -> ModelVersion | None:
    """Point the study at ``version``; returns the version it used before."""
    before_id = study_model_id(study.pk)
    before = ModelVersion.objects.filter(pk=before_id).first() if before_id else None
    StudyModel.objects.update_or_create(study=study, defaults={"model_version": version, "set_by": by})
    audit_record(actor=by, action=AuditAction.UPDATE, study=study, object_type="study_model", object_id=study.pk,
                 changes={"model": {"old": before.version if before else None, "new": version.version},
                          "via": action})
    return before


def _switch_to(*, study: Study, model: ModelVersion, by: Any, action: str) -> list[ScoringJob]:
    """The shared tail of promote and rollback: refuse the model in use, point the study at
    ``model`` (audited as ``action``) and switch its AI readings."""
    with transaction.atomic():
        if study_model_id(study.pk) == model.pk:
            raise ServiceError(f"{model.version!r} is already the study's model", code="already_active", status=409)
        _set_study_model(study=study, version=model, by=by, action=action)
        return study_scores_switch(study=study, version=model, by=by)


def site_model_promote(*, study: Study, version: str, by: Any) -> list[ScoringJob]:
    """Make the study's site model ``version`` the model it scores with. The study's AI readings
    switch to that model: at once for exams it has already scored, through low-priority rescoring
    jobs (returned) for the others."""
    permissions.require_admin(by, study)
    model = ModelVersion.objects.filter(version=version).first()
    if model is None or model.study_id != study.pk:
        raise ServiceError(f"{version!r} is not a site model of study {study.name!r}", code="unknown_model",
                           status=404)
    return _switch_to(study=study, model=model, by=by, action="promote")


def site_model_rollback(*, study: Study, version: str, by: Any) -> list[ScoringJob]:
    """Return the study to an earlier model (a shipped one or one of its site models); the AI
    readings of that model's stored scores are restored without rescoring."""
    permissions.require_admin(by, study)
    model = ModelVersion.objects.filter(version=version).first()
    if model is None or model.study_id not in (None, study.pk):
        raise ServiceError(f"{version!r} is neither a shipped model nor a site model of study {study.name!r}",
                           code="unknown_model", status=404)
    return _switch_to(study=study, model=model, by=by, action="rollback")


def study_model_choose(*, study: Study, version: str, by: Any) -> list[ScoringJob]:
    """Make a model shipped with the code (the default scorer, MCRFNet, Reg-STN or the cascade,
    named by its version) the model the study scores with, registering it on first choice. The
    study's AI readings switch as for a rollback: at once for exams it has scored, by low-priority
    rescoring jobs (returned) for the others. Refused, naming the reason, for an unknown version."""
    from scoring.engine import shipped_models  # lazy: reading weights files needs torch

    permissions.require_admin(by, study)
    shipped = {str(m.meta["version"]): m for m in shipped_models()}
    chosen = shipped.get(version)
    if chosen is None:
        raise ServiceError(f"{version!r} is not a model shipped with LUSWeb (shipped: {', '.join(sorted(shipped))})",
                           code="unknown_model", status=404)
    with transaction.atomic():
        model, _ = ModelVersion.objects.get_or_create(
            version=version, defaults={"weights": "" if chosen.name == "default" else chosen.name,
                                       "metadata": jsonable(chosen.meta)})
        if model.study_id is not None:  # a site model that took a shipped version's name: never
            raise ServiceError(f"{version!r} is registered as a site model", code="unknown_model", status=409)
    return _switch_to(study=study, model=model, by=by, action="choose")


#: The switches of the study's model that a page or the API asks for by name, in one place.
MODEL_ACTIONS: dict[str, Callable[..., list[ScoringJob]]] = {
    "promote": site_model_promote, "rollback": site_model_rollback, "choose": study_model_choose}


def study_model_switch(*, study: Study, action: str, version: str, by: Any) -> list[ScoringJob]:
    """Run the switch named ``action`` (a key of :data:`MODEL_ACTIONS`) to model ``version``; returns
    the rescoring jobs queued. An unknown action is refused by name."""
    run = MODEL_ACTIONS.get(action)
    if run is None:
        raise ServiceError(f"no site-model action {action!r} (one of {', '.join(MODEL_ACTIONS)})",
                           code="unknown_action", status=404)
    return run(study=study, version=version, by=by)


def study_scores_switch(*, study: Study, version: ModelVersion, by: Any) -> list[ScoringJob]:
    """Make ``version``'s scores the AI's readings of the study: each exam it has scored gets its
    stored clip scores back as AI readings (the newest job of that model); the others are queued
    for rescoring at low priority."""
    jobs = []
    done = dict(ScoringJob.objects.filter(exam__patient__study=study, model_version=version,
                                          status=JobStatus.SUCCEEDED)
                .order_by("exam_id", "created_at", "pk").values_list("exam_id", "pk"))  # the newest job wins
    for exam in Exam.objects.filter(patient__study=study).order_by("pk"):
        if exam.pk in done:
            for score in ClipScore.objects.filter(job_id=done[exam.pk]).select_related(
                    "clip__exam__patient", "model_version"):
                ai_reading_of(score)
        elif exam.clips.exists():
            jobs.append(scoring_job_request(exam=exam, reason="study-rescore", by=by, model_version=version))
    return jobs

