"""Clip pages; included from ``lusweb/urls.py``."""
from __future__ import annotations

from django.urls import path

from patients.imaging import views

urlpatterns = [
    path("clips/<int:pk>/", views.clip_detail, name="clip-detail"),
    path("clips/<int:pk>/original/", views.clip_original, name="clip-original"),
    path("clips/<int:pk>/source/", views.clip_source, name="clip-source"),
    path("clips/<int:pk>/frames/<int:index>.png", views.clip_frame, name="clip-frame"),
    path("clips/<int:pk>/video.mp4", views.clip_video, name="clip-video"),
    path("clips/<int:pk>/strip.png", views.clip_strip, name="clip-strip"),
    path("clips/<int:pk>/delete/", views.clip_delete, name="clip-delete"),
]
