"""Receiving's pages (the study inbox) and DICOMweb (``/dicomweb/``); included from ``lusweb/urls.py``."""
from __future__ import annotations

from django.urls import path, re_path

from patients.receiving import api, views

urlpatterns = [
    path("studies/<int:pk>/inbox/", views.study_inbox, name="study-inbox"),
    path("studies/<int:pk>/inbox/assign/", views.inbox_assign_many, name="inbox-assign-many"),
    path("inbox/<int:pk>/assign/", views.inbox_assign, name="inbox-assign"),
    path("inbox/<int:pk>/discard/", views.inbox_discard, name="inbox-discard"),
    # DICOMweb (PS3.18): STOW-RS and QIDO-RS, with the API's authentication.
    re_path(r"^dicomweb/studies/?$", api.StudiesAPI.as_view(), name="dicomweb-studies"),
    re_path(r"^dicomweb/studies/(?P<uid>[^/]+)/?$", api.StowAPI.as_view(), name="dicomweb-study"),
    re_path(r"^dicomweb/studies/(?P<uid>[^/]+)/series/?$", api.QidoSeriesAPI.as_view(), name="dicomweb-study-series"),
    re_path(r"^dicomweb/series/?$", api.QidoSeriesAPI.as_view(), name="dicomweb-series"),
]
