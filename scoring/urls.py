"""Scoring pages; included from ``lusweb/urls.py``."""
from __future__ import annotations

from django.urls import path

from scoring import views
from scoring.site import views as site_views

urlpatterns = [
    path("models/", views.model_list, name="model-list"),
    path("exams/<int:pk>/rescore/", views.exam_rescore, name="exam-rescore"),
    path("jobs/<int:pk>/retry/", views.job_retry, name="job-retry"),
    path("studies/<int:pk>/rescore/", views.study_rescore, name="study-rescore"),
    path("studies/<int:pk>/site-models/", site_views.site_models_page, name="site-models"),
    path("studies/<int:pk>/site-models/<str:action>/", site_views.site_models_action, name="site-models-action"),
]
