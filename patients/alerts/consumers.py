"""Live alert counts over WebSockets: ``/ws/alerts/`` (the header badge and the study pages).

Authenticates with the session cookie or ``?token=``, joins the user's group, sends a snapshot
(``{"type": "snapshot", "count"}``: the user's open alerts) first, so a reconnecting page is never
behind, then relays ``patients.alerts.live``'s messages (``{"type": "alert", "event", "study",
"alert", "kind", "count"}``). A ``{"type": "snapshot"}`` from the page asks for the count again.
"""
from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from lusweb.sockets import socket_user
from patients.alerts.live import user_group
from patients.alerts.selectors import user_open_count


@database_sync_to_async
def _snapshot(user: Any) -> dict[str, Any]:
    return {"type": "snapshot", "count": user_open_count(user)}


class AlertsConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        user = await socket_user(self.scope)
        if user is None:
            await self.close(code=4401)
            return
        self.user = user
        self.group = user_group(user.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_json(await _snapshot(user))

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def alert_message(self, event: dict[str, Any]) -> None:
        await self.send_json(event["message"])

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "snapshot":
            await self.send_json(await _snapshot(self.user))
