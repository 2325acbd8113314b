"""LUSWeb's temporary files: one folder (``TEMP_DIR``), recognisable names, removed on start.

Django receives large uploads into ``FILE_UPLOAD_TEMP_DIR`` (the same folder; names
``tmp*.upload*``) and the ingest worker copies a stored upload here when its storage cannot give a
seekable stream (``lusweb-ingest-*``). A process killed meanwhile leaves them behind: the web
server (``lusweb.asgi`` / ``lusweb.wsgi``) and every worker (``worker_ready``) call
:func:`tempfiles_clean` when they start, removing what is older than ``TEMP_STALE_SECONDS`` -
longer than any request or task runs, so a file still in use is never taken.
"""
from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings

logger = logging.getLogger(__name__)

#: Prefix of the temporary files LUSWeb itself makes.
PREFIX = "lusweb-"
#: Django's temporary upload files: ``tmpXXXXXXXX.upload.<ext>`` (``TemporaryUploadedFile``).
DJANGO_UPLOAD_MARK = ".upload"


def temp_dir() -> Path:
    """The folder (created when missing)."""
    path = Path(settings.TEMP_DIR)
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def temp_file(kind: str, suffix: str = "") -> Iterator[tuple[Path, int]]:
    """A new temporary file ``lusweb-<kind>-*<suffix>`` in the folder, as (path, open fd); removed on exit."""
    fd, name = tempfile.mkstemp(prefix=f"{PREFIX}{kind}-", suffix=suffix, dir=temp_dir())
    try:
        yield Path(name), fd
    finally:
        try:
            os.close(fd)
        except OSError:
            pass  # the caller closed it
        Path(name).unlink(missing_ok=True)


def _ours(name: str) -> bool:
    return name.startswith(PREFIX) or (name.startswith("tmp") and DJANGO_UPLOAD_MARK in name)


def tempfiles_clean(*, older_than: float | None = None) -> int:
    """Remove LUSWeb's and Django's temporary upload files not touched for ``older_than`` seconds
    (default ``TEMP_STALE_SECONDS``); other files in the folder are left alone. Returns how many."""
    age = float(settings.TEMP_STALE_SECONDS if older_than is None else older_than)
    cutoff = time.time() - age
    removed = 0
    for entry in os.scandir(temp_dir()):
        try:
            if entry.is_file(follow_symlinks=False) and _ours(entry.name) and entry.stat().st_mtime < cutoff:
                os.unlink(entry.path)
                removed += 1
        except FileNotFoundError:
            continue  # removed by another process starting at the same time
    if removed:
        logger.info("removed %d stale temporary files from %s", removed, temp_dir())
    return removed
