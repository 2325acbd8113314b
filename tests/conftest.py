"""Shared pytest fixtures and the strict-skip policy.

Tests that need an external resource (a server, a browser, ``../shared/data``) call
:func:`require` instead of ``pytest.skip``: on a bare machine they skip with the reason,
under ``LUSWEB_TEST_STRICT=1`` (set by ``.ci/run``) they fail, so CI always exercises them.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.hostile import HOSTILE

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("LUSWEB_SHARED_DATA", ROOT.parent / "shared" / "data"))
STRICT = os.environ.get("LUSWEB_TEST_STRICT", "") == "1"

# The production server as a subprocess (``asgi_server``), for every test that needs one.
pytest_plugins = ["tests.server"]


def signed_in(user: Any) -> Any:
    """A test client (``django.test.Client``) with ``user`` logged in, as a browser after sign-in."""
    from django.test import Client  # lazy: as the fixtures below, Django is set up after this module loads

    client = Client()
    client.force_login(user)
    return client


def require(condition: bool, reason: str) -> None:
    """Skip (or fail under LUSWEB_TEST_STRICT=1) when an external resource is missing."""
    if condition:
        return
    if STRICT:
        pytest.fail(f"LUSWEB_TEST_STRICT=1 forbids skipping: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ``../shared/data`` (real COVID-BLUES and POCUS clips)."""
    require(SHARED_DATA.is_dir(), f"real LUS data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def hostile_file(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """``hostile_file(name)``: the hostile input ``tests.hostile.HOSTILE[name]`` (a decompression bomb,
    a lying or truncated header), made on first use and kept in this session's pytest tmp dir."""
    folder = tmp_path_factory.mktemp("hostile")
    return lambda name: HOSTILE[name].make(folder)


@pytest.fixture(autouse=True)
def _isolated_media(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test stores files in its own folder, so "nothing was stored" is checkable. Site models
    live with the media, as they do by default, where a worker started by the test looks too."""
    try:
        settings = request.getfixturevalue("settings")
    except pytest.FixtureLookupError:  # pytest-django disabled (-p no:django): pure tests only
        return
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.SITE_MODELS_DIR = tmp_path / "media" / "models"
    monkeypatch.setenv("LUSWEB_SITE_MODELS_DIR", str(settings.SITE_MODELS_DIR))


@pytest.fixture
def api_for() -> Callable[..., Any]:
    """An API client authenticated with a real token for ``user``."""

    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    def make(user: object) -> APIClient:
        client = APIClient()
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    return make
