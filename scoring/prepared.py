"""Prepared clips kept beside each clip's frame cache (:mod:`scoring.core.features.prepared`).

The worker prepares a clip for the study's scorer once: right after ingest stores it (a task on
the ingest queue, which the worker serves before any scoring job, while the exam's other zones
are usually still uploading), or else the first time a scoring job reads it. Every later job of
that clip (the exam's next upload, a rescoring, a site model of the same recipe) reads the
prepared file and runs only the CNN and the heads.

The file is ``prepared-<key>.npz`` in the folder of the frame cache, through the frame cache's
storage (so any backend holds it and every worker reads the same file), and goes with the clip
(:func:`remove_prepared_of_deleted_clip`). A missing, stale (another key) or damaged file is
prepared again; nothing here can change a score, since a prepared clip is the clip prepared.
"""
from __future__ import annotations

import logging
import posixpath
from collections.abc import Callable
from typing import Any

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction

from lusweb.broker import task_send
from patients.imaging.dispatch import INGEST_QUEUE
from patients.imaging.models import ClipStatus, ZoneClip
from scoring import runtime
from scoring.core.features.prepared import Prepared, prepared_bytes, prepared_read
from scoring.core.inference.scorer import Scorer
from scoring.services import model_version_for

logger = logging.getLogger(__name__)

PREFIX = "prepared-"
CLIP_PREPARE_TASK = "scoring.tasks.clip_prepare"


def prepared_name(clip: ZoneClip, key: str) -> str:
    """The storage name of the clip's prepared file for preparation ``key``."""
    return posixpath.join(posixpath.dirname(str(clip.frames.name)), f"{PREFIX}{key}.npz")


def clip_prepared_read(*, clip: ZoneClip, scorer: Scorer) -> Prepared | None:
    """The clip as ``scorer`` prepares it, from its stored file; None when there is none (or it
    was prepared otherwise, or is damaged)."""
    if not clip.frames or not clip.frames.name:
        return None
    storage, name = clip.frames.storage, prepared_name(clip, scorer.prepare_key)
    if not storage.exists(name):
        return None
    with storage.open(name, "rb") as fh:
        return prepared_read(fh, scorer.prepare_key, scorer.cfg)


def clip_prepare(*, clip: ZoneClip, scorer: Scorer) -> Prepared:
    """Prepare the clip for ``scorer`` from its frame cache and store it, replacing a file that did
    not read back."""
    prepared = scorer.prepare_views(clip.load_frames())
    if not clip.frames or not clip.frames.name:
        return prepared  # no frame cache, no folder to keep it in
    storage, name = clip.frames.storage, prepared_name(clip, prepared.key)
    storage.delete(name)  # a damaged or stale file (a storage never overwrites, it renames)
    saved = storage.save(name, ContentFile(prepared_bytes(prepared)))
    if saved != name:  # another worker stored the same clip meanwhile: keep one file
        storage.delete(saved)
    return prepared


def clip_source(*, clip: ZoneClip, scorer: Any) -> Callable[[], np.ndarray | Prepared]:
    """What the scorer's preparation thread calls for the clip: its prepared file, or the clip
    prepared now (and stored); for a scorer that prepares no clips (a network), its frames."""
    if not isinstance(scorer, Scorer):
        return clip.load_frames

    def read() -> Prepared:
        try:
            stored = clip_prepared_read(clip=clip, scorer=scorer)
        except OSError:
            logger.warning("clip %s: its prepared file could not be read; preparing it again", clip.pk)
            stored = None
        return stored if stored is not None else clip_prepare(clip=clip, scorer=scorer)

    return read


def clip_prepare_stored(*, clip_id: int) -> str:
    """Prepare a ready clip for its study's scorer unless a prepared file is there (the task sent
    once ingest stored the clip). Returns what happened: 'prepared', 'kept', 'gone' (no such ready
    clip) or 'network' (the study's scorer prepares no clips). A failure costs only time: the
    scoring job prepares the clip itself, so it is logged, not retried."""
    clip = ZoneClip.objects.select_related("exam__patient").filter(pk=clip_id, status=ClipStatus.READY).first()
    if clip is None or not clip.frames or not clip.frames.name:
        return "gone"
    try:
        scorer = runtime.get_scorer(model_version_for(study=clip.exam.patient.study_id).weights)
        if not isinstance(scorer, Scorer):
            return "network"
        if clip_prepared_read(clip=clip, scorer=scorer) is not None:
            return "kept"
        clip_prepare(clip=clip, scorer=scorer)
    except Exception:  # an optimisation: the scoring job prepares the clip itself
        logger.exception("clip %s: preparing it for scoring failed; its scoring job will prepare it", clip_id)
        return "failed"
    return "prepared"


def prepare_stored_clip(sender: Any, *, clip: ZoneClip, **kwargs: Any) -> None:
    """``clip_stored`` receiver: once the ingest transaction commits, the clip is sent to be prepared
    on the ingest queue (before any scoring job: the worker takes ``ingest`` first), in a worker,
    never in the process that stored it (a web request, the DICOM receiver, the demo's seeding)."""
    if not getattr(settings, "SCORING_PREPARE_ON_INGEST", True):
        return
    clip_id = clip.pk
    transaction.on_commit(lambda: task_send(CLIP_PREPARE_TASK, args=(clip_id,), queue=INGEST_QUEUE), robust=True)


def remove_prepared_of_deleted_clip(sender: Any, *, instance: ZoneClip, **kwargs: Any) -> None:
    """``post_delete`` receiver: the clip's prepared files go once the deletion commits."""
    if not instance.frames or not instance.frames.name:
        return
    storage, folder = instance.frames.storage, posixpath.dirname(str(instance.frames.name))

    def remove() -> None:
        try:
            _dirs, files = storage.listdir(folder)
        except FileNotFoundError:
            return
        for name in files:
            if name.startswith(PREFIX):
                storage.delete(posixpath.join(folder, name))

    transaction.on_commit(remove)
