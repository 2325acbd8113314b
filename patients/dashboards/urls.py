"""Dashboard pages and their API routes; included once from ``lusweb/urls.py``."""
from __future__ import annotations

from django.urls import path

from patients.dashboards import api, views

urlpatterns = [
    path("studies/<int:pk>/overview/", views.study_overview, name="dashboard-study-overview"),
    path("studies/<int:pk>/correlation/", views.study_correlation, name="dashboard-study-correlation"),
    path("patients/<int:pk>/timeline/", views.patient_timeline, name="dashboard-patient-timeline"),
    path("patients/<int:pk>/correlation/", views.patient_correlation, name="dashboard-patient-correlation"),
    path("clips/<int:pk>/viewer/", views.clip_viewer, name="dashboard-clip-viewer"),
    path("clips/<int:pk>/gradcam/<int:index>.png", views.clip_gradcam, name="dashboard-clip-gradcam"),
    path("api/v1/patients/<int:pk>/timeline/", api.PatientTimelineAPI.as_view(), name="api-patient-timeline"),
    path("api/v1/patients/<int:pk>/correlation/", api.PatientCorrelationAPI.as_view(),
         name="api-patient-correlation"),
    path("api/v1/studies/<int:pk>/correlation/", api.StudyCorrelationAPI.as_view(), name="api-study-correlation"),
]
