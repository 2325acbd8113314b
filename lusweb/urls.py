from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from lusweb.health import healthz

urlpatterns = [
    path("healthz/", healthz, name="healthz"),
    # Pages outside base.html (admin, API docs) and bookmarks ask the root for it.
    path("favicon.ico", RedirectView.as_view(url=static("img/favicon.svg"), permanent=True)),
    path("admin/", admin.site.urls),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("patients.dashboards.urls")),
    path("api/v1/", include("patients.api.urls")),
    path("", include("patients.urls")),
]
