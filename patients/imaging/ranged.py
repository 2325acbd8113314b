"""Serving a stored file with HTTP caching and byte ranges (RFC 9110 ss. 13-14).

Browsers play a video with range requests: Chromium and Safari ask for ``Range: bytes=0-`` and
seek with further ranges; Safari refuses to play a video whose server ignores ranges. Django's
``FileResponse`` answers ranges with the whole file, hence this small server: one satisfiable
range gets ``206`` with ``Content-Range``, an unsatisfiable one ``416``, several ranges (rarely
sent for media) the whole file, and a matching ``If-None-Match`` ``304``. The file is read
through Django's storage API.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.http import FileResponse, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.utils.http import http_date

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass(frozen=True)
class Served:
    """What is served: a storage name and the validators and headers of its answers."""

    storage: Any
    name: str
    content_type: str
    etag: str
    last_modified: float | None   # seconds since the epoch
    cache_control: str


def byte_range(header: str, size: int) -> tuple[int, int] | None | str:
    """The inclusive (first, last) byte of a one-range ``Range`` header over ``size`` bytes; None
    when the header asks for the whole file (absent, malformed, several ranges); ``"unsatisfiable"``
    when it starts past the end."""
    match = _RANGE.match(header.strip().replace(" ", ""))
    if not match or not (match.group(1) or match.group(2)):
        return None
    first, last = match.group(1), match.group(2)
    if not first:  # a suffix: the last N bytes
        length = int(last)
        if length == 0 or size == 0:
            return "unsatisfiable"
        return max(0, size - length), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or (last and int(last) < start):
        return "unsatisfiable"
    return start, end


def _headers(response: HttpResponseBase, served: Served) -> HttpResponseBase:
    response["ETag"] = served.etag
    if served.last_modified is not None:
        response["Last-Modified"] = http_date(served.last_modified)
    response["Cache-Control"] = served.cache_control
    response["Accept-Ranges"] = "bytes"
    return response


def _etag_matches(header: str, etag: str) -> bool:
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in tags or etag in tags


def ranged_response(request: HttpRequest, served: Served) -> HttpResponseBase:
    """``served`` as answer to ``request``: 304, 206, 416 or 200 (see the module's docstring)."""
    if _etag_matches(request.headers.get("If-None-Match", ""), served.etag):
        return _headers(HttpResponse(status=304), served)
    size = int(served.storage.size(served.name))
    wanted = byte_range(request.headers.get("Range", ""), size)
    if_range = request.headers.get("If-Range")
    if if_range is not None and if_range.strip() != served.etag:
        wanted = None  # the client's copy is of another version: it gets the whole file
    if wanted == "unsatisfiable":
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        return _headers(response, served)
    if wanted is None:
        whole = FileResponse(served.storage.open(served.name, "rb"), content_type=served.content_type)
        whole["Content-Length"] = str(size)
        return _headers(whole, served)
    assert not isinstance(wanted, str)
    first, last = wanted
    with served.storage.open(served.name, "rb") as fh:
        fh.seek(first)
        body = fh.read(last - first + 1)
    response = HttpResponse(body, status=206, content_type=served.content_type)
    response["Content-Range"] = f"bytes {first}-{last}/{size}"
    response["Content-Length"] = str(len(body))
    return _headers(response, served)
