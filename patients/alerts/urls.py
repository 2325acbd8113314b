"""Alerts pages; included from ``lusweb/urls.py``."""
from __future__ import annotations

from django.urls import path

from patients.alerts import views

urlpatterns = [
    path("studies/<int:pk>/alerts/", views.study_alerts, name="study-alerts"),
    path("studies/<int:pk>/alerts/list/", views.study_alerts_list, name="study-alerts-list"),
    path("alerts/", views.my_alerts, name="my-alerts"),
    path("alerts/<int:pk>/acknowledge/", views.alert_acknowledge, name="alert-acknowledge"),
]
