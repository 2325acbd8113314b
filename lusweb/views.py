"""Site-wide views that belong to no app."""
from __future__ import annotations

from django.http import HttpRequest, HttpResponsePermanentRedirect
from django.templatetags.static import static


def favicon(request: HttpRequest) -> HttpResponsePermanentRedirect:
    """``/favicon.ico`` for pages outside ``base.html`` (admin, API docs) and old bookmarks.

    Resolved per request, not at import: with the manifest storage of production the hashed
    name exists only after ``collectstatic``, and a URLconf must import without it.
    """
    return HttpResponsePermanentRedirect(static("img/favicon.svg"))
