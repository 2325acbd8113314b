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
    path("", include("patients.dashboards.urls")),
    path("api/v1/", include("patients.api.urls")),
    path("", include("scoring.urls")),
    path("", include("patients.urls")),
]
