from __future__ import annotations

from django.urls import path

from patients import views

urlpatterns = [
    path("", views.home, name="home"),
    path("studies/<int:pk>/", views.study_detail, name="study-detail"),
    path("studies/<int:pk>/members/", views.study_members, name="study-members"),
    path("studies/<int:pk>/members/remove/", views.study_member_remove, name="study-member-remove"),
    path("studies/<int:pk>/settings/", views.study_settings, name="study-settings"),
    path("studies/<int:pk>/archive/", views.study_archive, name="study-archive"),
    path("studies/<int:pk>/export/", views.study_export, name="study-export"),
    path("studies/<int:pk>/export/download/", views.study_export_download, name="study-export-download"),
    path("studies/<int:pk>/audit/", views.study_audit, name="study-audit"),
    path("studies/<int:pk>/agreement/", views.study_agreement, name="study-agreement"),
    path("patients/<int:pk>/", views.patient_detail, name="patient-detail"),
    path("exams/<int:pk>/", views.exam_detail, name="exam-detail"),
    path("exams/<int:pk>/rescore/", views.exam_rescore, name="exam-rescore"),
    path("jobs/<int:pk>/retry/", views.job_retry, name="job-retry"),
    path("studies/<int:pk>/rescore/", views.study_rescore, name="study-rescore"),
    path("clips/<int:pk>/", views.clip_detail, name="clip-detail"),
    path("clips/<int:pk>/original/", views.clip_original, name="clip-original"),
    path("clips/<int:pk>/source/", views.clip_source, name="clip-source"),
    path("clips/<int:pk>/override/", views.clip_override, name="clip-override"),
    path("clips/<int:pk>/frames/<int:index>.png", views.clip_frame, name="clip-frame"),
    path("clips/<int:pk>/delete/", views.clip_delete, name="clip-delete"),
]
