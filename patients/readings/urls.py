"""Reading pages (form posts, the review worklist); included from ``lusweb/urls.py``."""
from __future__ import annotations

from django.urls import path

from patients.readings import views

urlpatterns = [
    path("clips/<int:pk>/read/", views.clip_read, name="clip-read"),
    path("clips/<int:pk>/override/", views.clip_override, name="clip-override"),
    path("clips/<int:pk>/adjudicate/", views.clip_adjudicate, name="clip-adjudicate"),
    path("exams/<int:pk>/sign/", views.exam_sign, name="exam-sign"),
    path("exams/<int:pk>/blind/", views.exam_blind_start, name="exam-blind"),
    path("exams/<int:pk>/blind/submit/", views.exam_blind_submit, name="exam-blind-submit"),
    path("studies/<int:pk>/worklist/", views.study_worklist, name="study-worklist"),
]
