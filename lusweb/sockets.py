"""Who is on the other end of a WebSocket: the one sign-in rule of every consumer."""
from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from rest_framework.authtoken.models import Token


@database_sync_to_async
def _user_from_token(key: str) -> Any:
    token = Token.objects.select_related("user").filter(key=key).first()
    return token.user if token and token.user.is_active else None


async def socket_user(scope: dict[str, Any]) -> Any:
    """The signed-in user of a WebSocket connection - the session's, or the API token's given as
    ``?token=`` (which wins) - or None when neither names an active, authenticated user."""
    user = scope.get("user")
    token = parse_qs(scope.get("query_string", b"").decode()).get("token")
    if token:
        user = await _user_from_token(token[0])
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return user
