"""Study pages; included from ``lusweb/urls.py``."""
from __future__ import annotations

from django.urls import path

from patients.studies import views

urlpatterns = [
    path("", views.home, name="home"),
    path("studies/<int:pk>/members/", views.study_members, name="study-members"),
    path("studies/<int:pk>/members/remove/", views.study_member_remove, name="study-member-remove"),
    path("studies/<int:pk>/settings/", views.study_settings, name="study-settings"),
    path("studies/<int:pk>/archive/", views.study_archive, name="study-archive"),
    path("studies/<int:pk>/audit/", views.study_audit, name="study-audit"),
]
