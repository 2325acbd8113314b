"""Database connections stay bounded under load and return afterwards (issue 15, "Connections").

The production server (uvicorn, 2 worker processes, ``lusweb.settings.database``'s pool on) serves
a patient with six scored 12-zone exams to 20 signed-in clients for 20 s, while a sampler counts the
PostgreSQL connections to the test database every 100 ms (``pg_stat_activity``; the server's carry
the application name ``PGAPPNAME`` gives them, the rest are the test's own). Acceptance: no error,
never more server connections than 2 processes x ``LUSWEB_DB_POOL_MAX`` = 2 x 4 = 8, and back to
the count before the load within 10 s after it. The measured figures go to
``$LUSWEB_TEST_OUTPUT/load-timeline.json``.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.conf import settings
from django.test import Client

from benchmarks.load import Load, percentile, users_start
from patients.records.models import Patient
from patients.studies.models import Role
from patients.studies.protocols import get_protocol
from tests.factories import (
    BloodGasFactory,
    ClinicalInfoFactory,
    ExamFactory,
    MembershipFactory,
    PatientFactory,
    StudyFactory,
    UserFactory,
)
from tests.patients.dashboards import builders
from tests.server import Server

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

WORKERS = 2
POOL_MAX = 4
BOUND = WORKERS * POOL_MAX
CLIENTS = 20
LOAD_SECONDS = 20.0
RETURN_SECONDS = 10.0
SAMPLE_SECONDS = 0.1
APP = "lusweb-load-test-server"


def _patient() -> tuple[Patient, Any]:
    """A patient with six exams x 12 scored zones (the AI's readings, a severity each), clinical
    records and blood gases: the timeline reads all of it."""
    study = StudyFactory(name="Load ward", protocol="12-zone")
    clinician = UserFactory(username="load-clinician")
    MembershipFactory(study=study, user=clinician, role=Role.CLINICIAN)
    start = dt.datetime(2026, 3, 1, 9, tzinfo=dt.UTC)
    patient = PatientFactory(study=study, code="LD-001", admission_date=start.date())
    codes = get_protocol("12-zone").codes
    mv = builders.model_version("load-model-1")
    for i in range(6):
        at = start + dt.timedelta(days=2 * i)
        exam = ExamFactory(patient=patient, acquired_at=at)
        builders.record_scores(exam, builders.zone_scores(codes, 1 + i % 3), mv=mv,
                               severity=("mild", "moderate", "severe")[i % 3])
        ClinicalInfoFactory(patient=patient, recorded_at=at)
        for hours in (1, 7):
            BloodGasFactory(patient=patient, sampled_at=at + dt.timedelta(hours=hours), paco2_mmhg=38.0 + i)
    return patient, clinician


Counter = Callable[[], tuple[int, int]]


def _count_connections() -> Counter:
    """A counter of the server's connections and of all connections to the test database, over a
    connection of its own to the ``postgres`` database (so that the sampler never counts itself)."""
    db = settings.DATABASES["default"]
    conn = psycopg.connect(dbname="postgres", user=db["USER"], password=db["PASSWORD"],
                           host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, autocommit=True)

    def count() -> tuple[int, int]:
        row = conn.execute("SELECT count(*) FILTER (WHERE application_name = %s), count(*) FROM pg_stat_activity"
                           " WHERE datname = %s", (APP, db["NAME"])).fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    return count


Samples = list[tuple[float, int, int]]


def _sample(count: Counter, until: Callable[[Samples], bool]) -> Samples:
    """(time, server connections, all connections) every ``SAMPLE_SECONDS`` until ``until(samples so far)``."""
    samples: Samples = []
    while not until(samples):
        samples.append((time.monotonic(), *count()))
        time.sleep(SAMPLE_SECONDS)
    return samples


def _baseline(count: Counter) -> int:
    """The server's connections before the load, once steady for 3 s (its start-up connection, for
    its ``/healthz/`` answer, goes back to a pool whose minimum is 0)."""
    deadline = time.monotonic() + 15
    values = [count()[0]]
    while time.monotonic() < deadline and (len(values) < 30 or len(set(values[-30:])) > 1):
        time.sleep(SAMPLE_SECONDS)
        values.append(count()[0])
    return values[-1]


def _run_load(server: Server, path: str, cookie: str, count: Counter) -> tuple[Load, Samples, float]:
    load, clients = users_start(server.port, path, {"Cookie": cookie}, b"LD-001", users=CLIENTS,
                                seconds=LOAD_SECONDS)
    during = _sample(count, lambda _: not any(t.is_alive() for t in clients))
    for t in clients:
        t.join()
    return load, during, time.monotonic()


def test_twenty_clients_on_the_timeline_stay_within_the_pool(asgi_server: Callable[..., Server]) -> None:
    patient, clinician = _patient()
    browser = Client()
    browser.force_login(clinician)
    cookie = f"{settings.SESSION_COOKIE_NAME}={browser.cookies[settings.SESSION_COOKIE_NAME].value}"
    server = asgi_server(workers=WORKERS, LUSWEB_DB_POOL="1", LUSWEB_DB_POOL_MIN="0", LUSWEB_DB_POOL_MAX=str(POOL_MAX),
                         LUSWEB_DB_POOL_MAX_IDLE="1", LUSWEB_LOG_LEVEL="WARNING", PGAPPNAME=APP)
    count = _count_connections()
    baseline = _baseline(count)
    load, during, ended = _run_load(server, f"/patients/{patient.pk}/timeline/", cookie, count)
    after = _sample(count, lambda seen: time.monotonic() - ended > RETURN_SECONDS or (bool(seen) and seen[-1][1] <= baseline))
    back = next((t - ended for t, n, _ in after if n <= baseline), None)
    peak = max(n for _, n, _ in during + after)
    figures = {
        "requests": len(load.latencies), "errors": len(load.errors), "clients": CLIENTS, "seconds": LOAD_SECONDS,
        "p50_ms": round(1000 * percentile(load.latencies, 50), 1), "p95_ms": round(1000 * percentile(load.latencies, 95), 1),
        "server_connections_before": baseline, "max_server_connections": peak, "pool_bound": BOUND,
        "max_connections_to_the_database": max(total for _, _, total in during + after),
        "seconds_to_baseline": None if back is None else round(max(back, 0.0), 2),
    }
    out = Path(os.environ.get("LUSWEB_TEST_OUTPUT", "/tmp/lusweb-test-output"))
    out.mkdir(parents=True, exist_ok=True)
    (out / "load-timeline.json").write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures))
    assert load.errors == [], load.errors[:5]
    assert len(load.latencies) >= CLIENTS, figures
    assert 0 < peak <= BOUND, figures  # more than 0: the sampler did see the server's connections
    assert back is not None, f"connections still above the baseline {RETURN_SECONDS:.0f} s after the load: {figures}"
