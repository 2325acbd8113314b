from __future__ import annotations

from django.urls import path

from patients import views

urlpatterns = [
    path("", views.home, name="home"),
    path("studies/<int:pk>/", views.study_detail, name="study-detail"),
    path("studies/<int:pk>/members/", views.study_members, name="study-members"),
    path("patients/<int:pk>/", views.patient_detail, name="patient-detail"),
    path("exams/<int:pk>/", views.exam_detail, name="exam-detail"),
    path("exams/<int:pk>/rescore/", views.exam_rescore, name="exam-rescore"),
    path("jobs/<int:pk>/retry/", views.job_retry, name="job-retry"),
    path("studies/<int:pk>/rescore/", views.study_rescore, name="study-rescore"),
    path("clips/<int:pk>/", views.clip_detail, name="clip-detail"),
    path("clips/<int:pk>/original/", views.clip_original, name="clip-original"),
    path("clips/<int:pk>/frames/<int:index>.png", views.clip_frame, name="clip-frame"),
    path("clips/<int:pk>/delete/", views.clip_delete, name="clip-delete"),
]
