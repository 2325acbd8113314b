"""Live progress over WebSockets: authentication, membership, snapshot first, ordered messages."""
from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from rest_framework.authtoken.models import Token

from lusweb.asgi import application
from patients.studies.models import Membership, Role
from scoring.models import JobStatus, ModelVersion, ScoringJob
from scoring.progress import exam_group
from tests.factories import ExamFactory, UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


def _world() -> dict[str, Any]:
    exam = ExamFactory()
    member, outsider = UserFactory(), UserFactory()
    Membership.objects.create(study=exam.patient.study, user=member, role=Role.RESEARCHER)
    version = ModelVersion.objects.create(version="ws-test", weights="", is_active=True)
    job = ScoringJob.objects.create(exam=exam, model_version=version, status=JobStatus.RUNNING, progress=0.25)
    return {
        "exam": exam, "job": job,
        "member_token": Token.objects.create(user=member).key,
        "outsider_token": Token.objects.create(user=outsider).key,
    }


def _communicator(path: str) -> WebsocketCommunicator:
    # AllowedHostsOriginValidator needs an allowed Origin.
    return WebsocketCommunicator(application, path, headers=[(b"origin", b"http://localhost"),
                                                             (b"host", b"localhost")])


async def test_outsider_is_denied() -> None:
    world = await sync_to_async(_world)()
    comm = _communicator(f"/ws/exams/{world['exam'].pk}/?token={world['outsider_token']}")
    connected, code = await comm.connect()
    assert connected is False and code == 4403


async def test_anonymous_and_bad_token_are_denied() -> None:
    world = await sync_to_async(_world)()
    for query in ("", "?token=not-a-token"):
        comm = _communicator(f"/ws/exams/{world['exam'].pk}/{query}")
        connected, code = await comm.connect()
        assert connected is False and code == 4401


async def test_snapshot_on_connect_then_messages_in_order() -> None:
    world = await sync_to_async(_world)()
    comm = _communicator(f"/ws/exams/{world['exam'].pk}/?token={world['member_token']}")
    connected, _ = await comm.connect()
    assert connected
    snapshot = await comm.receive_json_from(timeout=5)
    assert snapshot["type"] == "snapshot" and snapshot["exam"] == world["exam"].pk
    assert snapshot["scores"]["status"] == "running" and snapshot["scores"]["progress"] == 0.25
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    sent = [{"type": "progress", "job": world["job"].pk, "progress": p / 10, "step": f"scored zone {p}"}
            for p in range(1, 6)]
    sent.append({"type": "finished", "job": world["job"].pk, "progress": 1.0, "luss": 7})
    for message in sent:
        await layer.group_send(exam_group(world["exam"].pk), {"type": "progress.message", "message": message})
    received = [await comm.receive_json_from(timeout=5) for _ in sent]
    assert received == sent
    await comm.disconnect()


async def test_session_cookie_authentication() -> None:
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    world = await sync_to_async(_world)()

    def make_session() -> str:
        user = Membership.objects.get(study=world["exam"].patient.study).user
        store = SessionStore()
        store[SESSION_KEY] = str(user.pk)
        store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        store[HASH_SESSION_KEY] = user.get_session_auth_hash()
        store.save()
        return str(store.session_key)

    key = await sync_to_async(make_session)()
    comm = WebsocketCommunicator(application, f"/ws/exams/{world['exam'].pk}/", headers=[
        (b"origin", b"http://localhost"), (b"host", b"localhost"),
        (b"cookie", f"{settings.SESSION_COOKIE_NAME}={key}".encode()),
    ])
    connected, _ = await comm.connect()
    assert connected
    assert (await comm.receive_json_from(timeout=5))["type"] == "snapshot"
    await comm.disconnect()
