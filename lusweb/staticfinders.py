"""Serve plotly.js from the installed plotly package (no CDN, nothing vendored in git).

Only ``vendor/plotly/plotly.min.js`` is exposed; the rest of plotly's package data (sample
datasets) stays out of collectstatic.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import plotly
from django.contrib.staticfiles.finders import BaseFinder
from django.core.checks import Error
from django.core.files.storage import FileSystemStorage

PUBLIC_NAME = "vendor/plotly/plotly.min.js"


def _plotly_js() -> Path:
    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


class PlotlyFinder(BaseFinder):
    def check(self, **kwargs: Any) -> list[Any]:
        if not _plotly_js().exists():
            return [Error(f"plotly.min.js not found at {_plotly_js()}", id="lusweb.E001")]
        return []

    def find(self, path: str, find_all: bool = False, **kwargs: Any) -> Any:
        if path == PUBLIC_NAME:
            found = str(_plotly_js())
            return [found] if find_all or kwargs.get("all") else found
        return [] if find_all or kwargs.get("all") else None

    def list(self, ignore_patterns: Any) -> Any:
        source = _plotly_js()
        storage = FileSystemStorage(location=str(source.parent))
        storage.prefix = "vendor/plotly"  # type: ignore[attr-defined]
        yield source.name, storage
