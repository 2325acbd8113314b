"""Links to clip pages are built from one resolved pattern: the same URLs as ``reverse``."""
from __future__ import annotations

from django.urls import clear_script_prefix, reverse, set_script_prefix

from patients.dashboards.selectors import clip_url


def test_clip_links_are_the_resolved_urls_under_any_script_prefix() -> None:
    for clip_id in (1, 42, 987654321, 10**12):
        assert clip_url(clip_id) == reverse("clip-detail", args=[clip_id])
    assert clip_url(None) is None and clip_url(0) is None
    set_script_prefix("/lusweb/")  # served under a sub-path
    try:
        assert clip_url(7) == reverse("clip-detail", args=[7]) == "/lusweb/clips/7/"
    finally:
        clear_script_prefix()
    assert clip_url(7) == "/clips/7/"
