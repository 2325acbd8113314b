"""Dashboard pages (server side): access, data handed to the charts, chest diagram, the heat map."""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.template.loader import render_to_string
from django.test import Client
from PIL import Image

from patients.dashboards import selectors
from patients.dashboards.overview import study_overview
from patients.dashboards.timeline import patient_timeline
from tests.assets import external_asset_refs
from tests.patients.dashboards import builders
from tests.patients.dashboards.conftest import Cohort

pytestmark = pytest.mark.django_db


def client_for(user: Any) -> Client:
    c = Client()
    c.force_login(user)
    return c


def _pages(c: Cohort) -> list[str]:
    clip = c.exams[0].clips.get(zone="R1")
    return [f"/studies/{c.study.pk}/overview/", f"/studies/{c.study.pk}/correlation/",
            f"/patients/{c.patient.pk}/timeline/", f"/patients/{c.patient.pk}/correlation/",
            f"/clips/{clip.pk}/viewer/"]


def test_pages_for_members_outsiders_and_anonymous(cohort: Cohort, monkeypatch: pytest.MonkeyPatch) -> None:
    for url in _pages(cohort):
        anon = Client().get(url)
        assert anon.status_code == 302 and "/login/" in anon["Location"]
        assert client_for(cohort.users["outsider"]).get(url).status_code == 404
        for role in ("study_admin", "clinician", "researcher"):
            res = client_for(cohort.users[role]).get(url)
            assert res.status_code == 200, (url, role)
            body = res.content.decode()
            assert "vendor/plotly/plotly.min.js" in body and external_asset_refs(body) == []
            if role == "researcher":
                assert "Alice Secret" not in body and "H-SECRET-1" not in body


def test_identifying_fields_only_for_clinical_roles(cohort: Cohort) -> None:
    url = f"/studies/{cohort.study.pk}/overview/"
    assert "Alice Secret" in client_for(cohort.users["clinician"]).get(url).content.decode()
    assert "Alice Secret" not in client_for(cohort.users["researcher"]).get(url).content.decode()
    data = study_overview(study=cohort.study, user=cohort.users["researcher"])
    assert all(row["name"] is None and row["hospital_number"] is None for row in data["patients"])


def test_overview_rows(cohort: Cohort) -> None:
    data = study_overview(study=cohort.study, user=cohort.users["clinician"])
    assert data["threshold"] == 18 and data["max_luss"] == 36
    a = next(r for r in data["patients"] if r["code"] == "A-001")
    assert a["luss"] == cohort.luss[1] and a["arrow"] == "↑"
    # Like with like: L6 was missing at the first exam, so the change is over the 11 zones scored
    # at both: 26 less L6's 3 at the second exam, against 10.
    assert a["compared_zones"] == 11 and a["delta"] == cohort.luss[1] - 3 - cohort.luss[0] == 13
    assert a["coverage"] == "12/12 zones" and a["luss_pct"] == round(100 * 26 / 36, 1)
    assert a["threshold_points"] == 18 and a["protocol"] == "12-zone" and a["other_protocol"] is False
    assert a["severity"] == "severe"
    kinds = [f["kind"] for f in a["flags"]]
    assert "zone_worsened" in kinds and "threshold_up" in kinds  # 11 -> 24 crosses 18
    assert any("R1 0→3" in f["text"] for f in a["flags"])
    assert a["missing_zones"] == [z for z in cohort.extra["codes"] if z != "R1"]  # last exam has only R1
    assert a["unscored_exams"] == 1 and a["exams_without_gas"] == 1 and a["no_clinical"] is False
    b = next(r for r in data["patients"] if r["code"] == "B-001")
    assert b["delta"] is None and b["arrow"] == "" and b["no_clinical"] is True and b["exams_without_gas"] == 0
    assert data["chart"]["codes"] == ["A-001", "B-001", "B-002"]
    custom = study_overview(study=cohort.study, user=cohort.users["clinician"], threshold=30, window_hours=1)
    a = next(r for r in custom["patients"] if r["code"] == "A-001")
    assert not [f for f in a["flags"] if f["kind"].startswith("threshold")]
    assert a["exams_without_gas"] == 3


def test_overview_lists_zones_unlike_the_training_clips(cohort: Cohort) -> None:
    from scoring.models import ClipScore

    e1, e2, _ = cohort.exams
    a_row = next(r for r in study_overview(study=cohort.study, user=cohort.users["clinician"])["patients"]
                 if r["code"] == "A-001")
    assert a_row["unvalidated_zones"] == []  # scores without the check (extra has no domain)
    for zone, inside in (("R1", False), ("L2", False), ("R2", True)):
        ClipScore.objects.filter(clip__exam=e2, zone=zone).update(
            extra={"domain": {"distance": 1.0 if inside else 6.0, "in_domain": inside, "threshold": 2.3}})
    # An older exam's flag does not count: the row is about the latest scored exam (e2).
    ClipScore.objects.filter(clip__exam=e1, zone="R3").update(extra={"domain": {"in_domain": False}})
    a_row = next(r for r in study_overview(study=cohort.study, user=cohort.users["clinician"])["patients"]
                 if r["code"] == "A-001")
    assert a_row["unvalidated_zones"] == ["L2", "R1"]
    page = client_for(cohort.users["researcher"]).get(f"/studies/{cohort.study.pk}/overview/").content.decode()
    assert "2 zones unlike training clips at the latest scored exam" in page
    # The exam page and the clip viewer mark the same zones.
    web = client_for(cohort.users["clinician"])
    exam_page = web.get(f"/exams/{e2.pk}/").content.decode()
    assert exam_page.count('class="ood"') == 2 and "(R1, L2) look unlike the clips" in exam_page
    r1 = e2.clips.get(zone="R1")
    viewer = web.get(f"/clips/{r1.pk}/viewer/").content.decode()
    assert "unlike training clips" in viewer and "distance 6.0" in viewer


def test_overview_bad_threshold_falls_back(cohort: Cohort) -> None:
    res = client_for(cohort.users["clinician"]).get(f"/studies/{cohort.study.pk}/overview/?threshold=abc")
    assert res.status_code == 200 and res.context["data"]["threshold"] == 18
    res = client_for(cohort.users["clinician"]).get(f"/studies/{cohort.study.pk}/overview/?threshold=12")
    assert res.context["data"]["threshold"] == 12


def test_timeline_page_embeds_the_api_payload(cohort: Cohort) -> None:
    res = client_for(cohort.users["clinician"]).get(f"/patients/{cohort.patient.pk}/timeline/")
    html = res.content.decode()
    start = html.index('<script id="timeline-data" type="application/json">') + len(
        '<script id="timeline-data" type="application/json">')
    payload = json.loads(html[start:html.index("</script>", start)])
    api = patient_timeline(patient=cohort.patient, user=cohort.users["clinician"])
    assert payload == json.loads(json.dumps(api))


def test_empty_states(db: Any) -> None:
    from tests.factories import MembershipFactory, PatientFactory, UserFactory

    patient = PatientFactory(code="EMPTY-1")
    user = UserFactory(username="lonely")
    MembershipFactory(study=patient.study, user=user, role="clinician")
    c = client_for(user)
    assert "No exam yet" in c.get(f"/patients/{patient.pk}/timeline/").content.decode()
    body = c.get(f"/patients/{patient.pk}/correlation/").content.decode()
    assert "at least 3" in body
    body = c.get(f"/studies/{patient.study.pk}/overview/").content.decode()
    assert "No scored exam yet" in body and "no exam" in body


def test_chest_diagram(cohort: Cohort) -> None:
    zones = selectors.chest_diagram_zones(exam=cohort.exams[0])
    assert [z["code"] for z in zones] == list(cohort.extra["codes"])
    by = {z["code"]: z for z in zones}
    assert by["R1"]["score"] == cohort.extra["s1"]["R1"] and by["R1"]["side"] == "right"
    assert by["R1"]["clip_url"].startswith("/clips/")
    assert by["L6"]["score"] is None  # clip-less (missing) zone
    assert by["L6"]["region"] == "posterior" and by["L6"]["level"] == "lower"
    html = render_to_string("dashboards/_chest_diagram.html", {"zones": zones})
    assert html.count('class="zone ') == 12
    assert 'data-zone="L6"' in html and "zone missing" in html
    unscored = selectors.chest_diagram_zones(exam=cohort.exams[2])
    html = render_to_string("dashboards/_chest_diagram.html", {"zones": unscored})
    assert "zone unscored" in html and html.count("zone missing") == 11


def test_viewer_data_has_the_previous_exam(cohort: Cohort) -> None:
    clip = cohort.exams[2].clips.get(zone="R1")
    data = selectors.clip_viewer(clip=clip, user=cohort.users["clinician"])
    assert data["previous"]["id"] == cohort.exams[1].clips.get(zone="R1").pk
    assert data["current"]["expected_scores"] == []  # not scored yet
    prev = data["previous"]
    probs = np.asarray(prev["frame_probs"])
    assert prev["expected_scores"] == pytest.approx(list(probs @ [0, 1, 2, 3]), abs=1e-3)
    first = selectors.clip_viewer(clip=cohort.exams[0].clips.get(zone="R1"), user=cohort.users["clinician"])
    assert first["previous"] is None


def test_gradcam_unavailable_is_503(cohort: Cohort, monkeypatch: pytest.MonkeyPatch) -> None:
    import scoring.runtime

    def broken(weights: str) -> Any:
        raise ImportError("No module named 'torch'")

    monkeypatch.setattr(scoring.runtime, "get_scorer", broken)
    clip = cohort.exams[0].clips.get(zone="R1")
    res = client_for(cohort.users["researcher"]).get(f"/clips/{clip.pk}/gradcam/0.png")
    assert res.status_code == 503 and "Heat map unavailable" in res.content.decode()
    assert client_for(cohort.users["outsider"]).get(f"/clips/{clip.pk}/gradcam/0.png").status_code == 404
    assert client_for(cohort.users["clinician"]).get(f"/clips/{clip.pk}/gradcam/99.png").status_code == 404


def test_gradcam_overlay_is_cached(cohort: Cohort, monkeypatch: pytest.MonkeyPatch, settings: Any) -> None:
    import scoring.runtime
    from patients.imaging.core.phantoms import phantom_cohort_clip
    from patients.imaging.models import ZoneClip

    calls: list[Any] = []
    real = scoring.runtime.get_scorer("default")  # the real default weights
    original = real.gradcam

    def counting(frames: Any, target: Any = None) -> Any:
        calls.append(target)
        return original(frames, target)

    monkeypatch.setattr(real, "gradcam", counting)
    frames = phantom_cohort_clip(3, seed=1, n_frames=4, rows=64, columns=80).frames
    monkeypatch.setattr(ZoneClip, "load_frames", lambda self: frames)
    clip = cohort.exams[0].clips.get(zone="R1")
    c = client_for(cohort.users["clinician"])
    first = c.get(f"/clips/{clip.pk}/gradcam/2.png")
    assert first.status_code == 200 and first["Content-Type"] == "image/png"
    img = np.asarray(Image.open(io.BytesIO(first.content)))
    assert img.shape == (64, 80, 4)  # aligned with the input frame
    assert img[..., 3].max() > img[..., 3].min()  # a real map: alpha follows the heat
    from scoring.selectors import current_clip_score

    score = current_clip_score(clip=clip)
    assert score is not None
    # The map explains the clip score shown, of the 4 frames the clip model read (all 4 here).
    assert first["X-Explained-Score"] == str(score.score) and first["X-Read-Frames"] == "0,1,2,3"
    second = c.get(f"/clips/{clip.pk}/gradcam/2.png")
    other = c.get(f"/clips/{clip.pk}/gradcam/0.png")  # computed with the first: one pass gives every read frame
    assert second.content == first.content and other.status_code == 200 and calls == [score.score]
    from django.core.files.storage import default_storage

    from patients.dashboards.gradcam import CACHE_FORMAT, cache_name

    name = cache_name(clip, score.model_version.version, score.score, 2)
    # Under the clip model's own folder: the frame head's overlays (gradcam/<version>/...) are not served.
    assert name.startswith(f"gradcam/{CACHE_FORMAT}/") and default_storage.exists(name)  # in the media storage
    with default_storage.open(name, "rb") as fh:
        assert fh.read() == first.content
    assert list(Path(settings.MEDIA_ROOT).rglob(f"gradcam/{CACHE_FORMAT}/*/*/s{score.score}-2.png"))  # MEDIA_ROOT


def test_unscored_study_is_graceful(db: Any) -> None:
    from tests.factories import BloodGasFactory, ExamFactory, MembershipFactory, UserFactory

    exam = ExamFactory()
    builders.fake_clip(exam, "R1")
    BloodGasFactory(patient=exam.patient, sampled_at=exam.acquired_at)
    user = UserFactory(username="c2")
    MembershipFactory(study=exam.patient.study, user=user, role="researcher")
    c = client_for(user)
    for url in (f"/patients/{exam.patient.pk}/timeline/", f"/studies/{exam.patient.study.pk}/overview/",
                f"/studies/{exam.patient.study.pk}/correlation/?score=severity",
                f"/clips/{exam.clips.get().pk}/viewer/"):
        assert c.get(url).status_code == 200, url
    data = patient_timeline(patient=exam.patient, user=user)
    assert data["exams"][0]["luss"] is None and data["exams"][0]["severity"] is None
