"""Site-model API (``/api/v1/studies/<id>/site-models/``): train, list, promote, roll back.

Members of the study read; study admins train, promote and roll back (the services check).
"""
from __future__ import annotations

from typing import Any

from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter
from rest_framework.views import APIView

from patients.studies.selectors import study_for
from scoring.site import selectors, services


class TrainRequestSerializer(serializers.Serializer[Any]):
    include_shipped = serializers.BooleanField(
        default=False, help_text="pool the shipped training set with the study's signed readings")


def _jobs(jobs: list[Any]) -> list[int]:
    return [int(j.pk) for j in jobs]


class SiteModelsView(APIView):
    """GET: the study's model, its site-model candidates (CV, the champion's CV on the same folds,
    learning curve) and trainings. POST: train a site model (202 with the job; 400 naming why not)."""

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, study_id: int) -> Response:
        study, _role = study_for(user=request.user, pk=study_id)
        return Response({**selectors.site_models(study=study), "shipped": selectors.shipped_model_rows(study=study)})

    @extend_schema(request=TrainRequestSerializer, responses=OpenApiTypes.OBJECT)
    def post(self, request: Request, study_id: int) -> Response:
        study, _role = study_for(user=request.user, pk=study_id)
        body = TrainRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        training = services.site_training_request(study=study, by=request.user,
                                                  include_shipped=body.validated_data["include_shipped"])
        return Response({"job": training.pk, **selectors.site_training_row(training)}, status=202)


class SiteModelActionView(APIView):
    """POST ``promote`` (a site model of the study), ``rollback`` (to a registered shipped model or an
    earlier site model) or ``choose`` (a model shipped with the code, by version: the default scorer,
    MCRFNet, Reg-STN, the cascade): the study scores with it from now on; answers with the
    rescoring jobs queued."""

    action = ""

    @extend_schema(request=None, responses=OpenApiTypes.OBJECT)
    def post(self, request: Request, study_id: int, version: str) -> Response:
        study, _role = study_for(user=request.user, pk=study_id)
        jobs = services.study_model_switch(study=study, action=self.action, version=version, by=request.user)
        return Response({"study": study.pk, "model": version, "action": self.action, "rescoring_jobs": _jobs(jobs),
                         "site_models": selectors.site_models(study=study)})


router = SimpleRouter()  # no viewsets: the paths below
urlpatterns: list[Any] = [
    path("studies/<int:study_id>/site-models/", SiteModelsView.as_view(), name="api-site-models"),
    # promote/, rollback/, choose/: one path per switch the services offer.
    *(path(f"studies/<int:study_id>/site-models/<str:version>/{action}/", SiteModelActionView.as_view(action=action),
           name=f"api-site-model-{action}") for action in services.MODEL_ACTIONS),
]
