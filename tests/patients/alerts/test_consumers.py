"""The badge's WebSocket (``/ws/alerts/``): signed-in users only, the user's open count first, then
each alert raised or acknowledged in their studies with their new count."""
from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from rest_framework.authtoken.models import Token

from lusweb.asgi import application
from patients.alerts.services import alert_acknowledge, alerts_evaluate_gas
from tests.factories import BloodGasFactory
from tests.patients.alerts.cohort import cohort

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


def _communicator(path: str) -> WebsocketCommunicator:
    return WebsocketCommunicator(application, path, headers=[(b"origin", b"http://localhost"), (b"host", b"localhost")])


def _world() -> dict[str, Any]:
    c = cohort(name="ws")
    alerts_evaluate_gas(gas_id=BloodGasFactory(patient=c.patient, pao2_mmhg=90.0, fio2=0.5).pk)  # P/F 180
    return {"cohort": c, "token": Token.objects.create(user=c.researcher).key}


async def test_anonymous_and_bad_tokens_are_refused() -> None:
    for query in ("", "?token=nope"):
        connected, code = await _communicator(f"/ws/alerts/{query}").connect()
        assert (connected, code) == (False, 4401)


async def test_the_count_first_then_each_change() -> None:
    world = await sync_to_async(_world)()
    c = world["cohort"]
    comm = _communicator(f"/ws/alerts/?token={world['token']}")
    connected, _ = await comm.connect()
    assert connected
    assert await comm.receive_json_from(timeout=5) == {"type": "snapshot", "count": 1}

    def more() -> tuple[int, Any]:
        raised = alerts_evaluate_gas(gas_id=BloodGasFactory(patient=c.patient, pao2_mmhg=60.0, fio2=0.5).pk)[0]
        first = c.study.alerts.exclude(pk=raised.pk).get()
        return raised.pk, alert_acknowledge(alert=first, by=c.clinician, comment="seen")

    raised_id, acknowledged = await sync_to_async(more)()
    assert await comm.receive_json_from(timeout=5) == {
        "type": "alert", "event": "raised", "study": c.study.pk, "alert": raised_id, "kind": "pf_ratio", "count": 2}
    assert await comm.receive_json_from(timeout=5) == {
        "type": "alert", "event": "acknowledged", "study": c.study.pk, "alert": acknowledged.pk, "kind": "pf_ratio",
        "count": 1}
    await comm.send_json_to({"type": "snapshot"})
    assert await comm.receive_json_from(timeout=5) == {"type": "snapshot", "count": 1}
    await comm.disconnect()
