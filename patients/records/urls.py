"""Record pages; included from ``lusweb/urls.py``."""
from __future__ import annotations

from django.urls import path

from patients.records import views

urlpatterns = [
    path("studies/<int:pk>/", views.study_detail, name="study-detail"),
    path("patients/<int:pk>/", views.patient_detail, name="patient-detail"),
]
