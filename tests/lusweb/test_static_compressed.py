"""Static files as production serves them: collected with WhiteNoise's compressed manifest storage
(hashed names, gzip/brotli copies), the plotly bundle answered compressed with a far-future
``Cache-Control``, and pages linking the hashed names (issue 16, "speed where people wait")."""
from __future__ import annotations

import gzip
import re
from pathlib import Path
from typing import Any

import pytest
from django.contrib.staticfiles.storage import staticfiles_storage
from django.core.management import call_command
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory, override_settings
from whitenoise.middleware import WhiteNoiseMiddleware

from lusweb.settings.base import SERVED_STORAGES
from lusweb.staticfinders import PUBLIC_NAME, _plotly_js

YEAR = 365 * 24 * 3600


def _not_found(_request: HttpRequest) -> HttpResponse:
    return HttpResponse(status=404)


@pytest.fixture
def collected(tmp_path: Path) -> Any:
    """collectstatic into a fresh STATIC_ROOT with production's storage, as the image's start does."""
    with override_settings(STORAGES=SERVED_STORAGES, STATIC_ROOT=tmp_path, DEBUG=False):
        call_command("collectstatic", interactive=False, verbosity=0)
        yield tmp_path  # (Django drops its storages when STORAGES changes, here and on the way out)


def test_plotly_is_served_compressed_with_a_hashed_name(collected: Path) -> None:
    url = staticfiles_storage.url(PUBLIC_NAME)
    assert url != f"/static/{PUBLIC_NAME}" and url.startswith("/static/vendor/plotly/plotly.min.")  # hashed
    middleware = WhiteNoiseMiddleware(_not_found)
    response = middleware(RequestFactory().get(url, HTTP_ACCEPT_ENCODING="gzip, deflate, br"))
    assert response.status_code == 200
    assert response["Content-Encoding"] in ("gzip", "br")
    original = _plotly_js().stat().st_size
    assert int(response["Content-Length"]) < original / 3  # 4.8 MB of JS compresses well
    assert f"max-age={10 * YEAR}" in response["Cache-Control"] and "immutable" in response["Cache-Control"]
    body = b"".join(response.streaming_content)  # type: ignore[attr-defined]
    if response["Content-Encoding"] == "gzip":
        assert gzip.decompress(body) == _plotly_js().read_bytes()
    # A client that accepts no compression still gets the file.
    plain = middleware(RequestFactory().get(url))
    assert "Content-Encoding" not in plain and int(plain["Content-Length"]) == original


@pytest.mark.django_db
def test_pages_link_the_hashed_names(collected: Path, client: Any, django_user_model: Any) -> None:
    client.force_login(django_user_model.objects.create_user("static-viewer", password="pw-static-1"))
    html = client.get("/").content.decode()
    assert staticfiles_storage.url("css/lusweb.css") in html and "/static/css/lusweb.css" not in html


def test_every_static_name_in_the_templates_was_collected(collected: Path) -> None:
    """A template naming a file that is not collected fails at render time under the manifest storage."""
    root = Path(__file__).resolve().parents[2] / "templates"
    names = {m for path in root.rglob("*.html") for m in re.findall(r"{% static '([^']+)' %}", path.read_text())}
    assert PUBLIC_NAME in names and len(names) > 5
    for name in sorted(names):
        assert staticfiles_storage.url(name) != f"/static/{name}", name  # found in the manifest, hashed


def test_urls_are_remembered_until_files_are_collected_again(tmp_path: Path) -> None:
    """The served storage remembers each URL (lusweb.staticstorage); collectstatic, which rewrites
    the manifest, makes it forget them; a name missing from the manifest still raises."""
    source = tmp_path / "src"
    (source / "css").mkdir(parents=True)
    (source / "css" / "site.css").write_text("body { color: black; }")
    with override_settings(STORAGES=SERVED_STORAGES, STATIC_ROOT=tmp_path / "root", STATICFILES_DIRS=[source],
                           DEBUG=False):
        call_command("collectstatic", interactive=False, verbosity=0)
        first = staticfiles_storage.url("css/site.css")
        assert re.fullmatch(r"/static/css/site\.[0-9a-f]{12}\.css", first)
        assert staticfiles_storage._urls == {"css/site.css": first}  # type: ignore[attr-defined]
        assert staticfiles_storage.url("css/site.css") == first
        with pytest.raises(ValueError, match="Missing staticfiles manifest entry"):
            staticfiles_storage.url("css/none.css")
        (source / "css" / "site.css").write_text("body { color: navy; }")
        call_command("collectstatic", interactive=False, verbosity=0)  # the same storage object
        second = staticfiles_storage.url("css/site.css")
        assert second != first and re.fullmatch(r"/static/css/site\.[0-9a-f]{12}\.css", second)
