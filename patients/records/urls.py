"""Record pages; included from ``lusweb/urls.py``."""
from __future__ import annotations

from django.urls import path

from patients.records import edit, views

urlpatterns = [
    path("studies/<int:pk>/", views.study_detail, name="study-detail"),
    path("patients/<int:pk>/", views.patient_detail, name="patient-detail"),
    # Edit and delete (with a confirmation page): kind is patient, exam, clinical or gas.
    path("records/<str:kind>/<int:pk>/edit/", edit.record_edit, name="record-edit"),
    path("records/<str:kind>/<int:pk>/delete/", edit.record_delete, name="record-delete"),
]
