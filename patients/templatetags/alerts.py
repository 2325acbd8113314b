"""Alert tags for pages that sit below the alerts (``{% load alerts %}``):

* ``{% alert_badge %}``: the header's count of the user's open alerts over their studies, updated
  live by ``static/js/alerts.js`` - ``templates/base.html``;
* ``{% study_alerts_card study %}``: the study's open alerts, each with its Acknowledge form -
  the study page (``patients.records``), refreshed live by the same script.
"""
from __future__ import annotations

from typing import Any

from django import template

from patients.alerts.models import AlertState
from patients.alerts.selectors import alert_rows, study_alerts, user_open_count
from patients.studies.models import Study

register = template.Library()


def _request_context(context: Any) -> dict[str, Any]:
    return {"request": context.get("request"), "csrf_token": context.get("csrf_token"), "user": context.get("user")}


@register.inclusion_tag("alerts/_badge.html", takes_context=True)
def alert_badge(context: Any) -> dict[str, Any]:
    request = context.get("request")
    user = getattr(request, "user", None)
    # Only a page served over ASGI (uvicorn, daphne) can open the WebSocket; under WSGI (the test
    # live server, a plain runserver without Channels) the badge polls the count instead.
    return {**_request_context(context), "count": user_open_count(user), "live": hasattr(request, "scope")}


@register.inclusion_tag("alerts/_study_alerts.html", takes_context=True)
def study_alerts_card(context: Any, study: Study) -> dict[str, Any]:
    request = context.get("request")
    rows = alert_rows(study_alerts(study, state=AlertState.OPEN), user=getattr(request, "user", None))
    return {**_request_context(context), "study": study, "rows": rows, "show_study": False}
