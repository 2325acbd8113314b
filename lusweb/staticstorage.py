"""The served static files' storage (production): WhiteNoise's compressed, hashed-name storage,
whose URLs are remembered per name.

Why: every page asks for the URLs of its stylesheet, scripts and icon (``{% static %}``), and each
ask parsed, looked up and joined the name again: about 4 % of a web process's CPU under the
pages-under-load benchmark. The manifest is read once when the process starts and does not change
while it runs (a deploy collects the files and restarts the processes), so neither do the URLs.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.conf import settings
from whitenoise.storage import CompressedManifestStaticFilesStorage


class ServedStaticStorage(CompressedManifestStaticFilesStorage):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._urls: dict[str, str] = {}

    def url(self, name: str | None, force: bool = False) -> str:
        """Django's URL of ``name``, remembered (a name missing from the manifest still raises)."""
        if force or settings.DEBUG or name is None:
            return str(super().url(name, force))
        found = self._urls.get(name)
        if found is None:
            found = self._urls[name] = str(super().url(name, force))
        return found

    def post_process(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        """collectstatic's pass, which rewrites the manifest: what was remembered is forgotten."""
        self._urls = {}
        yield from super().post_process(*args, **kwargs)
        self._urls = {}
