"""Live alert counts for the header badge and the study pages (``/ws/alerts/``,
``patients.alerts.consumers``).

Each signed-in page joins its user's group; when an alert is raised or acknowledged every member
of its study gets ``{"type": "alert", "event": "raised"|"acknowledged", "study", "alert",
"count"}`` with their own count of open alerts. Best effort, like ``lusweb.live``: the database
holds the truth, so a dead channel layer never fails the work that publishes.
"""
from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from patients.alerts.models import Alert
from patients.alerts.selectors import member_open_counts

logger = logging.getLogger(__name__)


def user_group(user_id: int) -> str:
    return f"alerts.user.{user_id}"


def alert_publish(alert: Alert, event: str) -> None:
    """Tell every member of the alert's study (their new open count); failures are logged, never raised."""
    try:
        layer = get_channel_layer()
        if layer is None:
            return
        send = async_to_sync(layer.group_send)
        for user_id, count in member_open_counts(alert.study_id).items():
            send(user_group(user_id), {"type": "alert.message", "message": {
                "type": "alert", "event": event, "study": alert.study_id, "alert": alert.pk,
                "kind": alert.kind, "count": count}})
    except Exception:
        logger.warning("could not publish alert %s", alert.pk, exc_info=True)
