"""Dataset importers on the shared data (read in place): COVID-BLUES and POCUS."""
from __future__ import annotations

import csv
from io import StringIO
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from sklearn.metrics import cohen_kappa_score

from patients.imaging.models import ZoneClip
from patients.readings.models import ReadingSource, ZoneReading
from patients.records.models import BloodGas, ClinicalInfo, Exam, Patient
from patients.records.units import KPA_TO_MMHG
from patients.research import importers
from patients.studies.models import Study
from scoring.models import ClipScore, ModelVersion
from tests.conftest import require

pytestmark = pytest.mark.django_db


def _covid_blues(shared_data: Path) -> Path:
    root = shared_data / "covid-blues"
    require(root.is_dir(), f"COVID-BLUES not found at {root}")
    return root


def test_covid_blues_subset_and_rerun_is_idempotent(shared_data: Path) -> None:
    root = _covid_blues(shared_data)
    out = StringIO()
    call_command("import_covid_blues", str(root), "--limit-patients", "2", stdout=out)
    assert "2 patients (2 new)" in out.getvalue()
    study = Study.objects.get(name="COVID-BLUES")
    assert (study.protocol, study.deidentify, study.keep_original) == ("blue-6", False, True)
    counts = (Patient.objects.count(), Exam.objects.count(), ZoneClip.objects.count(), ZoneReading.objects.filter(source=ReadingSource.IMPORTED).count(),
              ClinicalInfo.objects.count(), BloodGas.objects.count())
    out = StringIO()
    call_command("import_covid_blues", str(root), "--limit-patients", "2", stdout=out)
    assert "(0 new)" in out.getvalue()
    assert (Patient.objects.count(), Exam.objects.count(), ZoneClip.objects.count(), ZoneReading.objects.filter(source=ReadingSource.IMPORTED).count(),
            ClinicalInfo.objects.count(), BloodGas.objects.count()) == counts
    # Patient 1 (the first by id) has a second R1 clip: it sits in a repeat exam.
    first = Patient.objects.get(code="CB-1")
    exams = list(first.exams.order_by("acquired_at"))
    assert [sorted(e.clips.values_list("zone", flat=True)) for e in exams] == [
        ["L1", "L2", "L3", "R1", "R2", "R3"], ["R1"]]
    assert "repeat acquisition" in exams[1].notes
    severity = {r["video_file"]: r for r in csv.DictReader((root / "severity.csv").open())}
    for annotation in ZoneReading.objects.filter(source=ReadingSource.IMPORTED, clip__exam__patient=first).select_related("clip__exam"):
        stem = Path(annotation.clip.original_filename).stem
        assert annotation.rater_name == "covid-blues-expert"
        assert annotation.score == int(float(severity[stem]["Severity Score"]))
        assert annotation.findings["b_lines"] == (severity[stem]["B-lines"] == "yes")
    clinical = {r["patient_id"]: r for r in csv.DictReader((root / "clinical_variables.csv").open())}["1"]
    gas = BloodGas.objects.get(patient=first)
    assert gas.unit_entered == "kPa"
    assert gas.paco2_mmhg == pytest.approx(float(clinical["pCO2_find"]) * KPA_TO_MMHG)
    assert gas.pao2_mmhg == pytest.approx(float(clinical["pO2_find"]) * KPA_TO_MMHG)
    record = ClinicalInfo.objects.get(patient=first)
    assert record.age == int(float(clinical["pat_age"]))
    assert record.fever == (clinical["patient_symp#Fever"] == "1")


def test_pocus_zones_from_degum_and_labels(shared_data: Path) -> None:
    root = shared_data / "pocus"
    require((root / "dataset_metadata.csv").is_file(), f"POCUS not found at {root}")
    call_command("import_pocus", str(root), "--match", "Reg_pat2", stdout=StringIO())
    study = Study.objects.get(name="POCUS public")
    clips = ZoneClip.objects.filter(exam__patient__study=study).order_by("original_filename")
    assert [c.zone for c in clips] == ["R1", "R2", "R3", "R4", "R5", "R6"]  # DEGUM areas 1-6
    assert Patient.objects.filter(study=study).count() == 1  # one volunteer, six files
    assert Exam.objects.filter(patient__study=study).count() == 6
    labels = ZoneReading.objects.filter(source=ReadingSource.IMPORTED, rater_name="pocus-labels")
    assert labels.count() == 6 and {a.score for a in labels} == {0}
    assert "licence" in labels.first().comment  # type: ignore[union-attr]
    call_command("import_pocus", str(root), "--match", "Reg_pat2", stdout=StringIO())
    assert ZoneClip.objects.filter(exam__patient__study=study).count() == 6


def test_importer_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="lus_videos is missing"):
        call_command("import_covid_blues", str(tmp_path))
    with pytest.raises(CommandError, match="dataset_metadata.csv is missing"):
        call_command("import_pocus", str(tmp_path))
    (tmp_path / "lus_videos").mkdir()
    with pytest.raises(CommandError, match="--limit-patients must be at least 1"):
        call_command("import_covid_blues", str(tmp_path), "--limit-patients", "0")
    with pytest.raises(CommandError, match="no user named 'ghost'"):
        call_command("import_covid_blues", str(tmp_path), "--user", "ghost")


def _stub_scores(study: Study, version: ModelVersion) -> None:
    """Deterministic ClipScores written directly (what a scoring job stores), independent of the model."""
    from scoring.models import ScoringJob

    for exam in Exam.objects.filter(patient__study=study).order_by("pk"):
        job = ScoringJob.objects.create(exam=exam, model_version=version, status="succeeded")
        for clip in exam.clips.all():
            ClipScore.objects.create(job=job, clip=clip, zone=clip.zone, model_version=version, score=clip.pk % 4,
                                     probs=[0.25] * 4, findings={}, aggregator="stub", frame_count=1,
                                     frame_probs_f16=b"\x00" * 8)


def _score_all(study: Study, version: ModelVersion) -> None:
    from scoring.pipeline import scoring_job_execute
    from scoring.services import scoring_job_request

    for exam in Exam.objects.filter(patient__study=study).order_by("pk"):
        job = scoring_job_request(exam=exam, reason="test", model_version=version)
        assert scoring_job_execute(job_id=job.pk, worker="test") == "succeeded"


def _check_agreement_page(client: Any, study: Study, version: str) -> None:
    pairs = []
    for a in ZoneReading.objects.filter(source=ReadingSource.IMPORTED, clip__exam__patient__study=study, rater_name="covid-blues-expert"):
        score = ClipScore.objects.filter(clip=a.clip, model_version__version=version).order_by("-created_at").first()
        assert score is not None
        pairs.append((a.score, score.score))
    expert, model = [p[0] for p in pairs], [p[1] for p in pairs]
    data = client.get(f"/api/v1/studies/{study.pk}/agreement/", {"rater": "covid-blues-expert",
                                                                   "model": version}).json()
    assert data["n"] == len(pairs) == 235
    assert data["accuracy"] == pytest.approx(np.mean(np.array(expert) == np.array(model)))
    assert data["qwk"] == pytest.approx(cohen_kappa_score(expert, model, weights="quadratic"), abs=1e-9)
    page = client.get(f"/studies/{study.pk}/agreement/", {"rater": "covid-blues-expert", "model": version})
    assert page.status_code == 200
    assert f'<td id="agreement-accuracy">{data["accuracy"]:.3f}</td>'.encode() in page.content
    assert f'<td id="agreement-qwk">{data["qwk"]:.3f}</td>'.encode() in page.content


@pytest.mark.slow
def test_full_covid_blues_import_and_agreement_with_the_experts(shared_data: Path, client: Any) -> None:
    root = _covid_blues(shared_data)
    report = importers.import_covid_blues(root, by=importers.importer_user())
    study = report.study
    assert study is not None and not report.skipped
    assert Patient.objects.filter(study=study).count() == 42
    assert ZoneClip.objects.filter(exam__patient__study=study).count() == 235
    assert ZoneReading.objects.filter(source=ReadingSource.IMPORTED, rater_name="covid-blues-expert").count() == 235
    admin = importers.importer_user()
    client.force_login(admin)

    # Agreement figures against stored scores of a stand-in model ...
    stub = ModelVersion.objects.create(version="stub-scores", weights="stub")
    _stub_scores(study, stub)
    _check_agreement_page(client, study, stub.version)

    # ... and against the lead's default model (scoring/weights/default.pt), scored through the
    # real pipeline (scoring_job_request + scoring_job_execute), synchronously.
    from scoring.core.inference.scorer import DEFAULT_WEIGHTS

    require(DEFAULT_WEIGHTS.exists(), f"default scorer weights not found at {DEFAULT_WEIGHTS}")
    from scoring.services import model_version_register

    default = model_version_register(weights="", activate=True)
    _score_all(study, default)
    _check_agreement_page(client, study, default.version)
    assert client.get(f"/api/v1/studies/{study.pk}/agreement/", {"rater": "covid-blues-expert"}).json()["model"] == (
        default.version)  # the page defaults to the active (default) model


def test_covid_blues_signed_by_stores_the_expert_scores_as_signed_readings(shared_data: Path) -> None:
    from patients.readings.selectors import record_scores, review_states
    from tests.factories import UserFactory

    root = _covid_blues(shared_data)
    UserFactory(username="ward-expert")
    with pytest.raises(CommandError, match="no user named 'nobody'"):
        call_command("import_covid_blues", str(root), "--limit-patients", "2", "--signed-by", "nobody")
    out = StringIO()
    call_command("import_covid_blues", str(root), "--limit-patients", "2", "--signed-by", "ward-expert", stdout=out)
    exams = list(Exam.objects.all())
    assert f"{len(exams)} exams signed" in out.getvalue() and len(exams) == 3  # CB-1 has a repeat exam
    assert {s.status for s in review_states(exam_ids=[e.pk for e in exams]).values()} == {"reviewed"}
    expert = {r.clip_id: r.score for r in ZoneReading.objects.filter(source=ReadingSource.IMPORTED)}
    record = {r.clip_id: (r.score, r.kind, r.reader) for zones in record_scores(exam_ids=[e.pk for e in exams]).values()
              for r in zones.values()}
    assert len(record) == ZoneClip.objects.count() == len(expert)
    assert record == {clip: (score, "clinician", "ward-expert") for clip, score in expert.items()}
    study = Study.objects.get(name="COVID-BLUES")
    assert study.memberships.get(user__username="ward-expert").role == "clinician"
    readings = ZoneReading.objects.filter(source=ReadingSource.CLINICIAN).count()
    call_command("import_covid_blues", str(root), "--limit-patients", "2", "--signed-by", "ward-expert",
                 stdout=StringIO())
    assert ZoneReading.objects.filter(source=ReadingSource.CLINICIAN).count() == readings  # idempotent
    assert all(len(e.signatures.all()) == 1 for e in exams)
