"""The site's icon: linked from every page and answered at /favicon.ico for pages outside base.html."""
from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.test import Client

pytestmark = pytest.mark.django_db


def test_favicon_redirects_to_the_shipped_icon() -> None:
    res = Client().get("/favicon.ico")
    assert res.status_code == 301 and res["Location"].endswith("img/favicon.svg")
    path = finders.find("img/favicon.svg")
    assert isinstance(path, str) and "<svg" in Path(path).read_text(encoding="utf-8")


def test_login_page_links_the_icon() -> None:
    assert b'rel="icon"' in Client().get("/login/").content
