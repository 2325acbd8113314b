"""Reading pages; included from ``lusweb/urls.py``."""
from __future__ import annotations

from django.urls import path

from patients.readings import views

urlpatterns = [
    path("clips/<int:pk>/override/", views.clip_override, name="clip-override"),
]
