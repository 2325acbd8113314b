"""``page_data`` writes what Django's ``json_script`` writes, and a hostile string cannot leave the script."""
from __future__ import annotations

import datetime as dt
import json
import re

from django.template import Context, Template
from django.utils.html import json_script

from patients.templatetags.page_data import page_data

HOSTILE = {"note": "</script><script>alert('x')</script> & <!-- >", "when": dt.date(2026, 3, 2), "n": [1, 2.5, None],
           "zone": "R1 <b>", "unicode": "Ødem é ✓"}


def test_the_same_bytes_as_json_script() -> None:
    assert str(page_data(HOSTILE, "data")) == str(json_script(HOSTILE, "data"))
    assert str(page_data([], "x")) == str(json_script([], "x"))


def test_nothing_closes_the_script_and_the_data_reads_back() -> None:
    html = Template('{% load page_data %}{{ d|page_data:"timeline-data" }}').render(Context({"d": HOSTILE}))
    assert html.count("</script>") == 1 and html.count("<script") == 1
    body = re.fullmatch(r'<script id="timeline-data" type="application/json">(.*)</script>', html, re.S)
    assert body is not None and not set("<>&") & set(body.group(1))
    assert json.loads(body.group(1)) == {**HOSTILE, "when": "2026-03-02"}
