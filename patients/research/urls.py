"""Research pages; included from ``lusweb/urls.py``."""
from __future__ import annotations

from django.urls import path

from patients.research import views

urlpatterns = [
    path("studies/<int:pk>/export/", views.study_export, name="study-export"),
    path("studies/<int:pk>/export/download/", views.study_export_download, name="study-export-download"),
    path("studies/<int:pk>/agreement/", views.study_agreement, name="study-agreement"),
]
