"""The one API URLconf (``/api/v1/``): one router assembled from every capability's routes.

Each capability's ``api`` module has a ``router`` (its viewsets) and ``urlpatterns`` (its other
API paths). Two capabilities may route actions under one resource - ``clips/<id>/override/`` is
readings', ``clips/<id>/frames/`` scoring's - so their registries are joined here rather than
registered twice. The order of the registry is the order of the API root.
"""
from __future__ import annotations

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from lusweb.headers import csp_update
from lusweb.signin import TokenView
from patients.alerts import api as alerts_api
from patients.dashboards import api as dashboards_api
from patients.imaging import api as imaging_api
from patients.readings import api as readings_api
from patients.receiving import api as receiving_api
from patients.records import api as records_api
from patients.reports import api as reports_api
from patients.research import api as research_api
from patients.studies import api as studies_api
from scoring import api as scoring_api
from scoring.site import api as site_api

CAPABILITIES = (studies_api, records_api, dashboards_api, imaging_api, readings_api, scoring_api, site_api,
                research_api, receiving_api, reports_api, alerts_api)

router = DefaultRouter()
for capability in CAPABILITIES:
    router.registry.extend(capability.router.registry)

urlpatterns = [
    path("auth/token/", TokenView.as_view(), name="api-token"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Swagger UI's init script from its own URL (?script), not inline: the Content-Security-Policy.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    # ReDoc styles itself with <style> elements it writes at run time, and searches in a blob: worker.
    # ReDoc's sidebar shows its maker's logo from cdn.redoc.ly (not configurable): allowed as an
    # image on this page only, so the page raises no violation (offline, the logo just stays away).
    path("redoc/", csp_update(style_src=["'unsafe-inline'"], worker_src=["'self'", "blob:"],
                              img_src=["https://cdn.redoc.ly"])(
        SpectacularRedocView.as_view(url_name="api-schema")), name="api-redoc"),
    *[pattern for capability in CAPABILITIES for pattern in capability.urlpatterns],
    path("", include(router.urls)),
]
