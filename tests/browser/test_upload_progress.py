"""A clinician uploads a zone clip in the browser and watches the progress bar reach 100 %,
scored by a real Celery worker on the real broker."""
from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from patients.studies.models import Membership, Role
from scoring.models import JobStatus, ScoringJob
from tests.browser.conftest import login
from tests.factories import ExamFactory, PatientFactory, StudyFactory, UserFactory
from tests.worker import Worker, worker_env_fixture

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.browser]

worker_env = worker_env_fixture


def test_upload_and_watch_the_progress_bar(browser: Any, live_server: Any, worker_env: Callable[[], Worker],
                                           screenshot_dir: Path) -> None:
    from patients.imaging.core.phantoms import phantom_cohort_clip, write_mp4

    study = StudyFactory(protocol="12-zone")
    user = UserFactory(username="ward-nurse")
    Membership.objects.create(study=study, user=user, role=Role.CLINICIAN)
    exam = ExamFactory(patient=PatientFactory(study=study))
    worker = worker_env()
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "R3.mp4"
        write_mp4(phantom_cohort_clip(2, seed=5, n_frames=40, rows=224, columns=224), clip)
        page = browser.new_page()
        seen: list[int] = []
        try:
            login(page, live_server.url, "ward-nurse", "pw-for-tests-1")
            page.goto(f"{live_server.url}/exams/{exam.pk}/")
            page.select_option("select[name=zone]", "R3")
            page.set_input_files("input[name=file]", str(clip))
            with page.expect_navigation():
                page.click("form[enctype] button[type=submit]")
            assert "stored as zone R3" in page.content()
            # Watch the bar while the worker scores (the page reloads itself when it is done).
            for _ in range(600):
                value = page.evaluate(
                    "() => { const b = document.getElementById('job-progress-bar');"
                    " return b ? parseInt(b.getAttribute('aria-valuenow') || '0') : -1; }"
                )
                seen.append(value)
                if value >= 100 and page.locator("#job-status").inner_text() == "succeeded":
                    break
                page.wait_for_timeout(250)
            # The page reloads itself with the new scores.
            page.wait_for_function("() => document.getElementById('exam-luss')"
                                   " && document.getElementById('exam-luss').innerText.trim() !== '–'", timeout=20000)
            # The AI's reading is the zone's score of record until a clinician reads it.
            assert page.locator("tr[data-zone=R3] td.record[data-source=ai] .score").count() == 1
            assert page.locator("tr[data-zone=R3] td.ai .score").count() == 1
            page.screenshot(path=str(screenshot_dir / "upload-progress-clinician.png"), full_page=True)
        finally:
            page.close()
    tail = worker.log.read_text()[-2000:] if worker.log.exists() else ""
    assert max(seen) == 100, (seen[-20:], tail)
    assert ScoringJob.objects.filter(exam=exam, status=JobStatus.SUCCEEDED).exists()
    # It moved: we saw it below 100 before it reached 100, never going backwards within a job.
    assert min(seen) < 100
