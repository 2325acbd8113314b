"""Pages and the API: each capability's pages, and ``/api/v1/`` (``lusweb.api_urls``).

A name that is both a page and an API route (``clip-override``, ``model-list``) reverses to the
page: the API comes first, and Django reverses a name to its last pattern.
"""
from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from lusweb.health import healthz
from lusweb.views import favicon

urlpatterns = [
    path("healthz/", healthz, name="healthz"),
    path("favicon.ico", favicon, name="favicon"),
    path("admin/", admin.site.urls),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    # Password reset (and the set-password link of an invitation: the same confirmation page).
    path("password/reset/", auth_views.PasswordResetView.as_view(), name="password_reset"),
    path("password/reset/sent/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path("password/reset/<uidb64>/<token>/", auth_views.PasswordResetConfirmView.as_view(),
         name="password_reset_confirm"),
    path("password/reset/done/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
    path("api/v1/", include("lusweb.api_urls")),
    path("", include("patients.studies.urls")),
    path("", include("patients.records.urls")),
    path("", include("patients.imaging.urls")),
    path("", include("patients.readings.urls")),
    path("", include("patients.receiving.urls")),
    path("", include("patients.dashboards.urls")),
    path("", include("patients.research.urls")),
    path("", include("scoring.urls")),
    path("", include("patients.alerts.urls")),
]
