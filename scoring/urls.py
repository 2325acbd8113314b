from __future__ import annotations

from django.urls import path

from scoring import views

urlpatterns = [
    path("models/", views.model_list, name="model-list"),
]
