"""Which model a study scores with: the one place that answers it (pipeline, services, selectors,
site models and the pages all ask here)."""
from __future__ import annotations

from django.db.models import Case, IntegerField, OuterRef, Subquery, Value, When
from django.db.models.functions import Coalesce

from scoring.models import ModelVersion, StudyModel

#: The architectures of ``lus_train --arch`` that are not Lite0 scorers (a version's
#: ``metadata["arch"]``), as the pages name them.
NETWORK_LABELS: dict[str, str] = {"mcrfnet": "MCRFNet (Hu et al. 2021)", "reg-stn": "Reg-STN (Roy et al. 2020)",
                                  "cascade": "the cascade of Xing et al. 2022"}


def network_arch(version: ModelVersion) -> str | None:
    """The architecture of a network or cascade version; None for a Lite0 scorer (the shipped
    default, a site model)."""
    arch = (version.metadata or {}).get("arch")
    return str(arch) if arch in NETWORK_LABELS else None


def study_model_id(study_id: int) -> int | None:
    """The id of the model version the study scores with: its promoted (or rolled-back-to) model,
    else the active model; None before any model is registered."""
    chosen = StudyModel.objects.filter(study_id=study_id).values_list("model_version_id", flat=True).first()
    if chosen is not None:
        return int(chosen)
    active = ModelVersion.objects.filter(is_active=True).values_list("pk", flat=True).first()
    return int(active) if active is not None else None


def study_model_rank(study_path: str) -> Case:
    """An annotation for querysets of results (ExamScore, ClipScore): 0 when the row's model is the
    model its study scores with, else 1; ``study_path`` leads from the row to the study's id
    (``"exam__patient__study_id"``). Order by it to put the study's model first."""
    chosen = StudyModel.objects.filter(study_id=OuterRef(study_path)).values("model_version_id")[:1]
    active = ModelVersion.objects.filter(is_active=True).values("pk")[:1]
    return Case(When(model_version_id=Coalesce(Subquery(chosen), Subquery(active)), then=Value(0)),
                default=Value(1), output_field=IntegerField())
