from __future__ import annotations

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.authtoken.views import obtain_auth_token
from rest_framework.routers import DefaultRouter

from patients.api import views
from scoring.api import JobViewSet, ModelVersionViewSet

router = DefaultRouter()
router.register("studies", views.StudyViewSet, basename="study")
router.register("patients", views.PatientViewSet, basename="patient")
router.register("exams", views.ExamViewSet, basename="exam")
router.register("clips", views.ClipViewSet, basename="clip")
router.register("jobs", JobViewSet, basename="job")
router.register("models", ModelVersionViewSet, basename="model")

urlpatterns = [
    path("auth/token/", obtain_auth_token, name="api-token"),
    path("me/", views.MeView.as_view(), name="api-me"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    path("studies/<int:pk>/export/", views.StudyExportView.as_view(), name="api-study-export"),
    path("studies/<int:pk>/audit/", views.StudyAuditView.as_view(), name="api-study-audit"),
    path("studies/<int:pk>/agreement/", views.StudyAgreementView.as_view(), name="api-study-agreement"),
    path("studies/<int:pk>/archive/", views.StudyArchiveView.as_view(), name="api-study-archive"),
    path("studies/<int:pk>/members/<str:username>/", views.StudyMemberView.as_view(), name="api-study-member"),
    path("", include(router.urls)),
]
