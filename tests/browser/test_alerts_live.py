"""An alert reaches the open study page live: Chromium shows the study page (served by the
production ASGI server as a subprocess, with its WebSockets); the test process enters a blood gas
with a low P/F through the records service, and the header badge and the study's alert list
update without a reload. Acknowledging it (again in the test process) takes it away the same way."""
from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from patients.alerts.models import Alert
from patients.alerts.services import alert_acknowledge
from patients.records.services import blood_gas_create
from tests.browser.conftest import login
from tests.patients.alerts.cohort import T0, cohort
from tests.server import Server

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.browser]

COUNT = "() => document.getElementById('alerts-badge').dataset.count"


def elsewhere(work: Callable[[], Any]) -> Any:
    """Run ``work`` in a thread of its own, as a view or a worker would: Playwright's event loop
    runs in the test's thread, where the channel layer's ``async_to_sync`` cannot."""
    def run() -> Any:
        try:
            return work()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result(timeout=60)


def test_a_low_p_f_appears_on_the_open_study_page_without_a_reload(
        browser: Any, asgi_server: Callable[..., Server], tmp_path: Path, screenshot_dir: Path) -> None:
    with override_settings(STATIC_ROOT=tmp_path / "static"):  # the server's WhiteNoise serves what is collected
        call_command("collectstatic", interactive=False, verbosity=0)
    server = asgi_server(workers=1, LUSWEB_STATIC_ROOT=str(tmp_path / "static"))
    c = cohort(name="live")
    page = browser.new_page()
    try:
        login(page, server.url, c.clinician.username, "pw-for-tests-1")
        page.goto(f"{server.url}/studies/{c.study.pk}/")
        page.wait_for_function("() => document.getElementById('alerts-badge').dataset.live === '1'", timeout=20000)
        assert page.evaluate(COUNT) == "0" and page.locator("#study-alerts tr.alert-row").count() == 0
        page.evaluate("() => { window.notReloaded = true; }")

        gas = elsewhere(lambda: blood_gas_create(patient=c.patient, by=c.clinician, sampled_at=T0, pao2=62.0,
                                                 fio2=0.4))  # P/F 155
        alert = Alert.objects.get(blood_gas=gas)
        page.wait_for_function(f"{COUNT} === '1'", timeout=20000)
        assert page.locator("#alerts-count").inner_text() == "1"
        page.wait_for_selector(f"#study-alerts tr.alert-row[data-alert='{alert.pk}']", timeout=20000)
        row = page.locator(f"#study-alerts tr.alert-row[data-alert='{alert.pk}']")
        assert row.locator(".alert-message").inner_text() == "P/F 155 mmHg, below 300"
        assert row.locator(".alert-patient").inner_text() == "LIVE-01"
        assert row.locator(".alert-source").inner_text() == "blood gas"
        assert row.locator("form.alert-ack input[name=comment]").count() == 1
        assert page.locator("#study-alerts-count").inner_text() == "1"
        assert page.evaluate("() => window.notReloaded === true")  # the same page, not a reload
        page.screenshot(path=str(screenshot_dir / "alerts-live-raised.png"), full_page=True)

        elsewhere(lambda: alert_acknowledge(alert=alert, by=c.admin, comment="FiO2 raised to 0.6"))
        page.wait_for_function(f"{COUNT} === '0'", timeout=20000)
        page.wait_for_function("() => document.querySelectorAll('#study-alerts tr.alert-row').length === 0",
                               timeout=20000)
        assert page.evaluate("() => window.notReloaded === true")
    finally:
        page.close()
