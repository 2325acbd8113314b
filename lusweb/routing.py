"""WebSocket routes (live scoring progress is added by the scoring app)."""
from __future__ import annotations

from typing import Any

websocket_urlpatterns: list[Any] = []
