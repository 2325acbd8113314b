"""Scoring pages; included from ``lusweb/urls.py``."""
from __future__ import annotations

from django.urls import path

from scoring import views

urlpatterns = [
    path("models/", views.model_list, name="model-list"),
    path("exams/<int:pk>/rescore/", views.exam_rescore, name="exam-rescore"),
    path("jobs/<int:pk>/retry/", views.job_retry, name="job-retry"),
    path("studies/<int:pk>/rescore/", views.study_rescore, name="study-rescore"),
]
