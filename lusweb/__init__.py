"""LUSWeb Django project."""
from __future__ import annotations

from lusweb.celery import app as celery_app

__all__ = ["celery_app"]
