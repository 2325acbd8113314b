"""The review worklist's "most informative first" order (``?order=label-more``): the exams whose
unread zones a clinician should label first to improve the model - the AI's reading most uncertain,
the clip least like the study's labelled clips (the maths: ``scoring.core.inference.informative``).

:mod:`scoring.apps` registers it with readings' worklist, which sits below scoring and cannot read
clip scores.

* **Candidates**: the unread zones (no clinician reading) of the waiting exams that have a clip
  score, except in exams the user reads blind (the AI's reading is hidden from them). Each clip's
  score is its current one (:func:`scoring.selectors.current_clip_scores`).
* **Labelled clips**: zones whose record is a clinician's reading (or an adjudication) in a signed
  exam (reviewed, or amended since).
* **Novelty basis**: ``labelled`` - the distance of the clip's CNN descriptor (the pooled frame
  features kept with every clip score for the severity model, ``extra["severity_features"]``) to
  the nearest labelled clip of the study - when at least one labelled clip and one candidate have a
  descriptor of the same width; else ``domain`` - the out-of-domain distance to the model's
  training clips (``extra["domain"]["distance"]``), which says how unlike the training clips, not
  the study's labelled clips, a clip is.
* **Order**: an exam ranks by its most informative candidate zone; ties keep the urgent order, and
  the exams without a candidate follow in the urgent order, each saying why.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from patients.imaging.models import ZoneClip
from patients.readings.selectors import open_blind_exams, record_scores, review_states
from patients.readings.worklist import Ranked, Reordered, WorklistItem, WorklistOrder
from patients.records.models import Exam
from patients.studies.models import Study
from scoring.core.inference.informative import Informativeness, clip_descriptor, nearest_distances, rank_average
from scoring.core.stats import normalised_entropy
from scoring.selectors import current_clip_scores
from scoring.severity import unpack_features

LABEL_MORE = "label-more"
SIGNED = ("reviewed", "amended")
FEATURES = "extra__severity_features"
DOMAIN = "extra__domain__distance"


def labelled_clips(*, study: Study) -> list[int]:
    """The study's labelled clips: a clinician's reading (or an adjudication) is their record, in
    a signed exam."""
    exams = list(Exam.objects.filter(patient__study=study).values_list("pk", flat=True))
    signed = [e for e, state in review_states(exam_ids=exams).items() if state.status in SIGNED]
    return [r.clip_id for zones in record_scores(exam_ids=signed).values() for r in zones.values()
            if r.source == "clinician"]


def _uncertainty(probs: Any) -> float | None:
    """Normalised entropy of stored probabilities; None when they are not four usable numbers."""
    try:
        return normalised_entropy(probs) if isinstance(probs, list) and len(probs) == 4 else None
    except (TypeError, ValueError):
        return None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and np.isfinite(value) else None


@dataclass(frozen=True)
class Novelty:
    """How the candidates' novelty was measured: ``basis`` (``labelled`` or ``domain``), each
    candidate's value (None: unknown), the labelled clips measured against, and why the domain
    distance stood in (``fallback``; empty for ``labelled``)."""

    basis: str
    values: list[float | None]
    labelled: int = 0
    fallback: str = ""


def novelty(*, study: Study, candidates: list[int], scores: dict[int, dict[str, Any]]) -> Novelty:
    """Each candidate's novelty (see the module). ``scores``: the candidates' current scores with
    ``FEATURES`` and ``DOMAIN``."""
    desc = {c: clip_descriptor(unpack_features(scores[c].get(FEATURES))) for c in candidates}
    widths = Counter(d.shape[0] for d in desc.values() if d is not None)
    fallback = "the unread clips have no stored image features"
    if widths:
        width = widths.most_common(1)[0][0]
        labelled = current_clip_scores(clip_ids=labelled_clips(study=study), fields=[FEATURES])
        ref = [d for row in labelled.values()
               if (d := clip_descriptor(unpack_features(row.get(FEATURES)))) is not None and d.shape[0] == width]
        have = {c: d for c, d in desc.items() if d is not None and d.shape[0] == width}
        if ref:
            near = nearest_distances(np.stack(list(have.values())), np.stack(ref))
            dist = {c: float(v) for c, v in zip(have, near, strict=True)}
            return Novelty("labelled", [dist.get(c) for c in candidates], len(ref))
        fallback = ("no labelled clip of this study (a zone read by a clinician in a signed exam) has stored image "
                    "features yet")
    return Novelty("domain", [_number(scores[c].get(DOMAIN)) for c in candidates], fallback=fallback)


def _zone(zone: str, clip_id: int, parts: Informativeness, basis: str) -> dict[str, Any]:
    """One candidate zone for the API, with its ``text`` for the page."""
    if parts.novelty is None:
        far = "unknown"
    elif basis == "labelled":
        far = f"{parts.novelty:.2f} SD from the nearest labelled clip"
    else:
        far = f"distance {parts.novelty:.2f} to the training clips, 1 = typical"
    return {"zone": zone, "clip": clip_id, "informativeness": round(parts.value, 4),
            "uncertainty": round(parts.uncertainty, 4), "uncertainty_rank": round(parts.uncertainty_rank, 4),
            "novelty": None if parts.novelty is None else round(parts.novelty, 4),
            "novelty_rank": round(parts.novelty_rank, 4),
            "text": f"{zone} {parts.value:.2f} = mean of uncertainty rank {parts.uncertainty_rank:.2f} (entropy "
                    f"{parts.uncertainty:.2f}) and novelty rank {parts.novelty_rank:.2f} ({far})"}


def _not_ranked(item: WorklistItem, blind: set[int]) -> str:
    if item.exam_id in blind:
        return "Not ranked: the AI's readings are hidden during your blind read."
    if not item.unread:
        return "Not ranked: every zone has a clinician reading, nothing left to label (waits for sign-off)."
    return "Not ranked: its unread zones have no AI score yet."


def _note(novel: Novelty, candidates: int) -> str:
    """What the order used, for the page's explanation."""
    if novel.basis == "labelled":
        n = novel.labelled
        far = (f"how far the clip's image features (what the AI's network saw, stored with its scores) lie from "
               f"the nearest of the {n} labelled clip{'s' if n != 1 else ''} of this study (zones read by a "
               "clinician in a signed exam), in standard deviations")
    else:
        far = (f"the AI's out-of-domain distance of the clip to its training clips (1 = a typical training clip) - "
               f"{novel.fallback}, so it says how unlike the model's training clips, not this study's labelled "
               "clips, the clip is")
    return (f"Each unread zone's informativeness is the mean of two percentile ranks among the {candidates} unread "
            f"zone{'s' if candidates != 1 else ''} with an AI score (1.00 = the highest): its uncertainty, the "
            "normalised entropy of the AI's four probabilities (0 = sure, 1 = the four scores equally likely; "
            "unlike 1 - the top probability it counts how the doubt spreads over all four scores), and its "
            f"novelty, {far}. An exam ranks by its most informative unread zone; ties keep the urgent order.")


def label_more(study: Study, user: Any, items: list[WorklistItem]) -> Reordered:
    """The waiting exams (``items``, in the urgent order), most informative first: see the module."""
    blind = open_blind_exams(user=user, exam_ids=[i.exam_id for i in items])
    clip_of = {(e, z): c for e, z, c in ZoneClip.objects.filter(exam_id__in=[i.exam_id for i in items])
               .values_list("exam_id", "zone", "id")}
    wanted = [(i, z, clip_of[(i.exam_id, z)]) for i in items if i.exam_id not in blind for z in i.unread
              if (i.exam_id, z) in clip_of]
    scores = current_clip_scores(clip_ids=[c for _i, _z, c in wanted], fields=["probs", FEATURES, DOMAIN])
    found = [(i, z, c, u) for i, z, c in wanted if c in scores and (u := _uncertainty(scores[c]["probs"])) is not None]
    novel = novelty(study=study, candidates=[c for _i, _z, c, _u in found], scores=scores)
    parts = rank_average([u for *_rest, u in found], novel.values)
    zones: dict[int, list[dict[str, Any]]] = {}
    for (item, zone, clip_id, _u), p in zip(found, parts, strict=True):
        zones.setdefault(item.exam_id, []).append(_zone(zone, clip_id, p, novel.basis))
    ranked: list[tuple[float, int, Ranked]] = []
    rest: list[Ranked] = []
    for position, item in enumerate(items):
        mine = sorted(zones.get(item.exam_id, []), key=lambda z: -z["informativeness"])
        if not mine:
            rest.append(Ranked(item, None, _not_ranked(item, blind)))
            continue
        top = mine[0]  # its value is rounded as shown: exams that show the same value tie (urgent order)
        why = f"Most informative unread zone {top['zone']}: informativeness {top['informativeness']:.2f}."
        ranked.append((-top["informativeness"], position, Ranked(item, top["informativeness"], why, mine)))
    ordered = [r for *_key, r in sorted(ranked, key=lambda t: (t[0], t[1]))] + rest
    return Reordered(ordered, _note(novel, len(found)),
                     {"novelty_basis": novel.basis, "candidates": len(found), "labelled_clips": novel.labelled})


ORDER = WorklistOrder(LABEL_MORE, "Most informative first (to improve the model)", label_more)
