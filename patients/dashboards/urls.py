"""Dashboard pages (the exam page among them); included from ``lusweb/urls.py``."""
from __future__ import annotations

from django.urls import path

from patients.dashboards import views

urlpatterns = [
    path("studies/<int:pk>/overview/", views.study_overview, name="dashboard-study-overview"),
    path("studies/<int:pk>/ward/", views.study_ward, name="dashboard-study-ward"),
    path("studies/<int:pk>/correlation/", views.study_correlation, name="dashboard-study-correlation"),
    path("patients/<int:pk>/timeline/", views.patient_timeline, name="dashboard-patient-timeline"),
    path("patients/<int:pk>/correlation/", views.patient_correlation, name="dashboard-patient-correlation"),
    path("clips/<int:pk>/viewer/", views.clip_viewer, name="dashboard-clip-viewer"),
    path("clips/<int:pk>/gradcam/<int:index>.png", views.clip_gradcam, name="dashboard-clip-gradcam"),
    path("exams/<int:pk>/", views.exam_detail, name="exam-detail"),
]
