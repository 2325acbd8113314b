"""The clip viewer in headless Chromium: a 100-frame clip arrives in at most 3 requests (one MP4,
fetched with byte ranges), really plays (frames presented, the clock advances), and the per-frame
trace follows the frame on screen (acceptance line 3 of issue 16, "speed where people wait")."""
from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from patients.imaging.models import ZoneClip
from patients.studies.models import Role
from tests.browser.conftest import login
from tests.factories import ExamFactory, MembershipFactory, PatientFactory, StudyFactory, UserFactory
from tests.patients.dashboards import builders

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

PASSWORD = "pw-for-tests-1"
FPS = 25.0


def _clip() -> ZoneClip:
    from patients.imaging.core.phantoms import phantom_cohort_clip, write_mp4
    from patients.imaging.ingest import clip_ingest

    study = StudyFactory(name="Viewer ward", protocol="12-zone")
    clinician = UserFactory(username="v-clinician")
    clinician.set_password(PASSWORD)
    clinician.save()
    MembershipFactory(study=study, user=clinician, role=Role.CLINICIAN)
    exam = ExamFactory(patient=PatientFactory(study=study, code="VW-001"))
    buf = io.BytesIO()
    write_mp4(phantom_cohort_clip(2, seed=7, n_frames=100, rows=192, columns=256), buf)
    clip = clip_ingest(exam=exam, upload=SimpleUploadedFile("R1.mp4", buf.getvalue()), zone="R1", by=clinician,
                       filename="R1.mp4").clip
    builders.record_scores(exam, {"R1": 2}, mv=builders.model_version("viewer-model-1"))
    return clip


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        yield context.new_page()
    finally:
        context.close()


def test_the_viewer_plays_one_video_in_sync_with_its_trace(live_server: Any, page: Any) -> None:
    clip = _clip()
    assert clip.frame_count == 100 and clip.fps == pytest.approx(FPS)
    login(page, live_server.url, "v-clinician", PASSWORD)
    for_clip: list[str] = []
    prefix = f"/clips/{clip.pk}/"

    def watch(request: Any) -> None:
        path = request.url.split(live_server.url, 1)[-1]
        if path.startswith(prefix) and not path.startswith(f"{prefix}viewer/"):
            for_clip.append(f"{request.method} {path} {request.headers.get('range', '')}")

    page.on("request", watch)
    page.goto(f"{live_server.url}/clips/{clip.pk}/viewer/")
    page.wait_for_function("() => document.querySelector('#player-current video').readyState >= 2")
    # Plays: the clock advances and Chromium presents frames.
    page.click("#player-current .play")
    page.wait_for_function("() => window.LUSViewer.current.video.currentTime > 1.0 && window.LUSViewer.current.painted > 10",
                           timeout=15000)
    page.click("#player-current .play")
    assert page.evaluate("() => window.LUSViewer.current.video.paused") is True
    # The trace, slider and counter show the frame on screen: floor(t * fps).
    page.wait_for_timeout(200)
    state = page.evaluate("""() => { const v = window.LUSViewer.current; const plot = document.getElementById('plot-frames-current');
        return {t: v.video.currentTime, index: v.index, x0: plot.layout.shapes[0].x0, slider: document.querySelector('#player-current .slider').value}; }""")
    frame = min(99, int(state["t"] * FPS + 1e-3))
    assert state["index"] == frame and state["x0"] == frame and state["slider"] == str(frame), state
    assert page.inner_text("#player-current .counter") == f"{frame + 1} / 100"
    # A click on the trace seeks the video to that frame.
    page.evaluate("() => document.getElementById('plot-frames-current').emit('plotly_click', {points: [{x: 73}]})")
    page.wait_for_function("() => Math.floor(window.LUSViewer.current.video.currentTime * 25 + 1e-3) === 73")
    assert page.evaluate("() => window.LUSViewer.current.index") == 73
    assert page.inner_text("#player-current .counter") == "74 / 100"
    # The whole clip came in at most 3 requests (the video, with ranges), not one per frame.
    assert 1 <= len(for_clip) <= 3, for_clip
    assert all("/video.mp4" in r for r in for_clip), for_clip
    assert page.evaluate("() => window.LUSViewer.current.video.error") is None
