"""LUSWeb's temporary folder: Django receives uploads there, and stale files (a killed process's)
are removed while fresh ones and files of others are kept."""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile

from patients.imaging.tempfiles import temp_dir, temp_file, tempfiles_clean


def test_django_receives_large_uploads_in_the_lusweb_temporary_folder(rf: Any, settings: Any) -> None:
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1024  # larger uploads go to a temporary file
    request = rf.post("/api/v1/clips/", {"file": SimpleUploadedFile("a.dcm", b"x" * 4096)})
    upload = request.FILES["file"]
    path = Path(upload.temporary_file_path())
    assert path.parent == Path(django_settings.TEMP_DIR) and path.name.startswith("tmp") and ".upload" in path.name
    # What a killed process leaves: such a file, no longer open (Django removes it on close).
    left = path.with_name(path.name.replace(".upload", "dead.upload", 1))
    os.link(path, left)
    upload.close()
    old = time.time() - 3600
    os.utime(left, (old, old))
    assert tempfiles_clean(older_than=600) == 1 and not left.exists()  # the cleaner knows Django's names


def test_stale_temporary_files_go_and_the_others_stay(settings: Any, tmp_path: Path) -> None:
    settings.TEMP_DIR = tmp_path / "tmp"
    folder = temp_dir()
    assert folder.is_dir()
    old = time.time() - 3600

    def make(name: str, *, stale: bool) -> Path:
        path = folder / name
        path.write_bytes(b"x")
        if stale:
            os.utime(path, (old, old))
        return path

    stale = [make("lusweb-ingest-a1b2.dcm", stale=True), make("tmpq8x1zz2k.upload.mp4", stale=True)]
    kept = [make("lusweb-ingest-c3d4.dcm", stale=False), make("tmpf00b4r.upload.png", stale=False),
            make("notes.txt", stale=True), make("tmpq8x1zz2k.mp4", stale=True)]
    (folder / "lusweb-folder").mkdir()
    os.utime(folder / "lusweb-folder", (old, old))
    assert tempfiles_clean(older_than=600) == 2
    assert not any(p.exists() for p in stale) and all(p.exists() for p in kept)
    assert (folder / "lusweb-folder").is_dir()
    settings.TEMP_STALE_SECONDS = 60 * 60 * 2  # the default age: none of these is that old
    make("lusweb-ingest-e5f6.dcm", stale=True)
    assert tempfiles_clean() == 0


def test_a_temporary_file_is_named_for_lusweb_and_removed_after_use(settings: Any, tmp_path: Path) -> None:
    settings.TEMP_DIR = tmp_path / "tmp"
    with temp_file("ingest", ".dcm") as (path, fd):
        os.write(fd, b"DICM")
        assert path.parent == temp_dir() and path.name.startswith("lusweb-ingest-") and path.suffix == ".dcm"
        assert path.read_bytes() == b"DICM"
    assert not path.exists() and list(temp_dir().iterdir()) == []
