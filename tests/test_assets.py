"""The no-CDN check used by the page tests."""
from __future__ import annotations

from tests.assets import external_asset_refs


def test_external_references_are_found_and_tokens_are_not() -> None:
    assert external_asset_refs('<script src="https://cdn.plot.ly/plotly-2.js"></script>')
    assert external_asset_refs("<link href='//fonts.example.org/a.css'>")
    assert external_asset_refs('<style>body{background:url("https://x.org/a.png")}</style>')
    assert external_asset_refs("load from cdn.jsdelivr.net")
    local = ('<script src="/static/vendor/plotly/plotly.min.js"></script>'
             '<input name="csrfmiddlewaretoken" value="fpp1xliuqwcdnxrmb0bmw4tyvs6hso7f">')
    assert external_asset_refs(local) == []
