"""Clip viewer: time from request to the first frame painted, for a 100-frame clip, in headless
Chromium (issue 16; goal <= 1 s on a quiet machine).

Not a test: starts the ASGI server (uvicorn, one process) on a throw-away SQLite database in a
temporary ``LUSWEB_VAR_DIR`` with ``lusweb.settings.local`` (DEBUG off, static files collected),
ingests a 100-frame 350x350 MP4 phantom, and opens ``/clips/<id>/viewer/`` in a fresh browser
context each time (no HTTP cache). The first figure includes making the clip's video (first
request); the median is over the following loads. Also counts the requests made for the clip.

    .venv/bin/python -m benchmarks.bench_viewer [--loads 5]
"""
from __future__ import annotations

import argparse
import io
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import warnings
from pathlib import Path
from typing import Any

import django
from django.core.management import call_command

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
TARGET_S = 1.0
PASSWORD = "bench-viewer-pw-1"


def _setup() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="lusweb-bench-viewer-"))
    os.environ["LUSWEB_VAR_DIR"] = str(tmp)
    os.environ.pop("LUSWEB_DATABASE_URL", None)  # always the temporary SQLite file
    os.environ["DJANGO_SETTINGS_MODULE"] = "lusweb.settings.local"
    os.environ["LUSWEB_DEBUG"] = "0"
    sys.path.insert(0, str(ROOT))
    warnings.filterwarnings("ignore", message="No directory at")
    django.setup()
    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)


def _clip() -> int:
    """A clinician (``viewer`` / PASSWORD) and one ready 100-frame clip; its id."""
    # lazy: models import only once _setup() has configured Django
    from django.contrib.auth import get_user_model
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.utils import timezone

    from patients.imaging.core.phantoms import phantom_cohort_clip, write_mp4
    from patients.imaging.ingest import clip_ingest
    from patients.records.services import exam_create, patient_create
    from patients.studies.models import Membership, Role, Study

    user = get_user_model().objects.create_user("viewer", password=PASSWORD)
    study = Study.objects.create(name="viewer bench", protocol="12-zone")
    Membership.objects.create(study=study, user=user, role=Role.CLINICIAN)
    patient = patient_create(study=study, code="V1", by=user)
    exam = exam_create(patient=patient, acquired_at=timezone.now(), by=user)
    buf = io.BytesIO()
    write_mp4(phantom_cohort_clip(2, seed=3, n_frames=100, rows=350, columns=350), buf)
    return int(clip_ingest(exam=exam, upload=SimpleUploadedFile("R1.mp4", buf.getvalue()), zone="R1", by=user,
                           filename="R1.mp4").clip.pk)


def _server() -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "lusweb.asgi:application", "--host", "127.0.0.1",
                             "--port", str(port), "--lifespan", "off", "--no-access-log"], cwd=ROOT,
                            env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(f"{url}/healthz/", timeout=1)
            return proc, url
        except OSError:
            time.sleep(0.1)
    proc.terminate()
    raise RuntimeError("the server did not answer within 30 s")


def _load(browser: Any, url: str, clip_id: int) -> tuple[float, float, int]:
    """Seconds from navigation start to the video's first frame, to the player ready (scripts run,
    first frame shown), and the requests made for the clip."""
    context = browser.new_context()
    # Media events do not bubble: a capturing listener sees the video's first frame even before the
    # page's scripts (plotly first) have run.
    context.add_init_script("document.addEventListener('loadeddata', () => { if (window.__firstFrame === undefined)"
                            " window.__firstFrame = performance.now(); }, true);")
    page = context.new_page()
    page.goto(f"{url}/login/")
    page.fill("input[name=username]", "viewer")
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
    requests: list[str] = []
    prefix = f"{url}/clips/{clip_id}/"
    page.on("request", lambda r: requests.append(r.url) if r.url.startswith(prefix) and "/viewer/" not in r.url else None)
    page.goto(f"{url}/clips/{clip_id}/viewer/")
    page.wait_for_function("() => window.LUSViewer && window.LUSViewer.current.firstFrameAt !== null", timeout=30000)
    frame = float(page.evaluate("() => window.__firstFrame")) / 1000
    ready = float(page.evaluate("() => window.LUSViewer.current.firstFrameAt")) / 1000
    context.close()
    return frame, ready, len(requests)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--loads", type=int, default=5)
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        print(f"skipped: no Chromium at {CHROMIUM}")
        return
    _setup()
    clip_id = _clip()
    server, url = _server()
    try:
        from playwright.sync_api import sync_playwright  # lazy: only this benchmark drives a browser

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            first, first_ready, first_requests = _load(browser, url, clip_id)
            warm = [_load(browser, url, clip_id) for _ in range(args.loads)]
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    frame = statistics.median(f for f, _, _ in warm)
    ready = statistics.median(r for _, r, _ in warm)
    print(f"clip viewer, 100 frames 350x350: first frame {frame:.2f} s, player ready {ready:.2f} s "
          f"(median of {args.loads} loads, target {TARGET_S:.1f} s); the first load, which makes the video: "
          f"{first:.2f} s / {first_ready:.2f} s; requests for the clip: {first_requests} then "
          f"{max(n for _, _, n in warm)}")


if __name__ == "__main__":
    main()
