"""LUSWeb's temporary folder: Django receives uploads there, and stale files (a killed process's)
are removed while fresh ones and files of others are kept."""
from __future__ import annotations

import io
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage
from django.core.files.uploadedfile import SimpleUploadedFile

from patients.imaging.tempfiles import temp_dir, temp_file, tempfiles_clean


def test_django_receives_large_uploads_in_the_lusweb_temporary_folder(rf: Any, settings: Any) -> None:
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1024  # larger uploads go to a temporary file
    # The folder is shared by the whole test session: start from one without stale files of ours.
    tempfiles_clean(older_than=600)
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


class _ForwardOnly(io.RawIOBase):
    """A stream that reads forward only, as some remote storages serve a file."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.raw.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self.raw.close()
        super().close()


class ForwardOnlyStorage(FileSystemStorage):
    """Local files served through a stream that cannot seek (the worker must copy them first)."""

    def _open(self, name: str, mode: str = "rb") -> File:  # type: ignore[type-arg]
        return File(_ForwardOnly(open(self.path(name), mode)), name=name)


@pytest.mark.django_db
def test_a_stream_that_cannot_seek_is_read_from_a_temporary_copy(settings: Any, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from patients.imaging import decode
    from patients.imaging.ingest import clip_ingest
    from patients.studies.models import Membership, Role
    from tests.factories import ExamFactory, PatientFactory, StudyFactory, UserFactory
    from tests.patients.conftest import png_bytes

    settings.TEMP_DIR = tmp_path / "tmp"
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": f"{__name__}.ForwardOnlyStorage"}}
    copies: list[Path] = []
    real = decode.temp_file

    @contextmanager
    def watched(kind: str, suffix: str = "") -> Iterator[tuple[Path, int]]:
        with real(kind, suffix) as (path, fd):
            copies.append(path)
            yield path, fd

    monkeypatch.setattr(decode, "temp_file", watched)
    study = StudyFactory(protocol="12-zone", deidentify=False)
    user = UserFactory()
    Membership.objects.create(study=study, user=user, role=Role.CLINICIAN)
    raw = png_bytes(3)
    clip = clip_ingest(exam=ExamFactory(patient=PatientFactory(study=study)), upload=io.BytesIO(raw), zone="R1",
                       by=user, filename="a.png").clip
    assert clip.status == "ready" and (clip.frame_count, clip.rows, clip.columns) == (1, 64, 80)
    assert len(copies) == 1 and copies[0].name.startswith("lusweb-ingest-") and copies[0].parent == temp_dir()
    assert list(temp_dir().iterdir()) == []  # the copy is gone
    with clip.file.open("rb") as fh:
        assert not fh.seekable() and fh.read() == raw
