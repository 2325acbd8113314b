"""Dataset importers: public lung-ultrasound datasets into a study, through the services.

Both importers are idempotent: a re-run finds the patients, exams, clips (same bytes, same
zone), records and annotations it created and adds only what is missing. They read the
datasets in place; the clips are stored like any upload (``MEDIA_ROOT``), never in the repository.

The datasets are published and already anonymised, so their studies are created with
``deidentify=False, keep_original=True``: the clips are stored byte for byte (pass
``deidentify=True`` to run the upload de-identification anyway).

COVID-BLUES (``import_covid_blues``)
    * patient ``CB-<id>`` per ``patient_id`` of ``clinical_variables.csv`` that has clips; sex
      from ``pat_sex`` (0 female, 1 male); no dates are published, so every exam is placed at
      :data:`COVID_BLUES_EXAM_AT` and day 0 is the first exam;
    * one BLUE-6 exam per patient; the zone comes from the file name
      ``patient_<id>_<R1..L3>.mp4``. A second clip of a zone (``..._<zone>_2.mp4``, 7 files)
      cannot share the zone of the first exam, so it goes to a second BLUE-6 exam ten minutes
      later ("repeat acquisition", named in both exams' notes). All 235 clips are kept;
    * the expert score, A-line and B-line flags and comment of ``severity.csv`` become a
      :class:`~patients.readings.models.ZoneReading` (source ``imported``) by rater ``covid-blues-expert``;
    * one clinical record (admission values, one hour before the exam): age ``pat_age``;
      comorbidities cardiovascular = chronic cardiovascular disease, respiratory = history of
      pulmonary disease, digestive = liver disease, nervous = neurological condition or stroke,
      diabetes, hypertension = "Hypertonia", immunosuppression = AIDS/HIV, malignancy or
      autoimmune disease; symptoms fever, cough (coughing), dyspnea, sore throat, diarrhea,
      headache, fatigue, loss of smell/taste (anosmia or ageusia); SpO2 without oxygen (else
      with oxygen); respiratory rate; oxygen support none when ``oxygen_liter`` is 0, mask when
      applied by mask, else nasal cannula. The mapping lives in
      ``scoring.core.training.covid_blues.clinical_record`` and is shared with severity training;
    * one blood gas at the same time with ``pCO2_find`` and ``pO2_find`` entered in kPa
      (converted to mmHg by the service), ``pH_find`` and ``HCO3_find``; an implausible value
      is reported and that gas skipped.

POCUS (``import_pocus``)
    * study ``POCUS public`` (12-zone protocol); rows of ``dataset_metadata.csv`` are matched
      to the files by name (without extension, case-insensitive);
    * one patient per source patient when the metadata gives a numeric ``Patient ID`` (with
      its ``Source ID``), else one per file; non-numeric IDs are never stored (they could be
      names). Sex from ``Gender`` (m / w);
    * one exam per file at :data:`POCUS_EXAM_AT` (``Day+N`` in the name: N days later);
    * zone: ``Area according to DEGUM`` n (1-6) is stored as zone R<n> (the metadata gives no
      side); without an area the clip is filed under R1 and the exam notes say the zone is unknown;
    * an imported reading by rater ``pocus-labels``: the 4-class ``Lung Severity Score`` when present, and
      the binary findings (B-lines, A-lines, consolidations, effusion, pleural irregularities,
      air bronchogram); the comment keeps the diagnosis label, probe and licence.
"""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model

from lusweb.errors import ServiceError
from patients.imaging.ingest import clip_ingest
from patients.imaging.models import ZoneClip
from patients.readings.services import imported_reading_set
from patients.records.models import BloodGas, ClinicalInfo, Exam, Patient, Sex
from patients.records.services import blood_gas_create, clinical_info_create, exam_create, patient_create
from patients.research.signing import ExpertLabel, expert_readings_sign
from patients.studies.models import Study
from patients.studies.services import study_for_import
from scoring.core.training.covid_blues import clinical_record, number

COVID_BLUES_STUDY = "COVID-BLUES"
COVID_BLUES_RATER = "covid-blues-expert"
COVID_BLUES_EXAM_AT = dt.datetime(2021, 1, 1, 12, 0, tzinfo=dt.UTC)
REPEAT_OFFSET = dt.timedelta(minutes=10)
POCUS_STUDY = "POCUS public"
POCUS_RATER = "pocus-labels"
POCUS_EXAM_AT = dt.datetime(2020, 4, 20, 12, 0, tzinfo=dt.UTC)
IMPORTER_USERNAME = "lusweb-importer"

Log = Callable[[str], None]


class DatasetError(ServiceError):
    """The dataset folder is not what the importer expects; the message says what is missing."""


@dataclass
class ImportReport:
    study: Study | None = None
    patients: int = 0
    patients_created: int = 0
    exams: int = 0
    clips: int = 0
    clips_created: int = 0
    annotations: int = 0
    clinical_records: int = 0
    blood_gases: int = 0
    signed_exams: int = 0
    skipped: list[str] = field(default_factory=list)
    patient_ids: set[int] = field(default_factory=set)

    def summary(self) -> str:
        return (f"{self.study}: {self.patients} patients ({self.patients_created} new), {self.exams} exams, "
                f"{self.clips} clips ({self.clips_created} new), {self.annotations} annotations, "
                f"{self.clinical_records} clinical records, {self.blood_gases} blood gases, "
                f"{self.signed_exams} exams signed; "
                f"{len(self.skipped)} skipped")


def importer_user(username: str | None = None) -> Any:
    """The acting user: ``username`` if given, else a service account that cannot log in."""
    users = get_user_model()
    if username:
        user = users.objects.filter(username=username).first()
        if user is None:
            raise DatasetError(f"no user named {username!r}", code="unknown_user")
        return user
    user, created = users.objects.get_or_create(username=IMPORTER_USERNAME)
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise DatasetError(f"{path} is missing", code="missing_file")
    with path.open(newline="", encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


def _patient(study: Study, code: str, by: Any, report: ImportReport, **fields: Any) -> Patient:
    patient = Patient.objects.filter(study=study, code=code).first()
    if patient is None:
        patient = patient_create(study=study, code=code, by=by, **fields)
        report.patients_created += 1
    report.patient_ids.add(patient.pk)
    report.patients = len(report.patient_ids)
    return patient


def _exam(patient: Patient, at: dt.datetime, by: Any, **fields: Any) -> Exam:
    exam = Exam.objects.filter(patient=patient, acquired_at=at).first()
    if exam is None:
        exam = exam_create(patient=patient, acquired_at=at, by=by, **fields)
    return exam


def _clip(exam: Exam, path: Path, zone: str, by: Any, report: ImportReport, log: Log) -> ZoneClip | None:
    try:
        with path.open("rb") as fh:
            result = clip_ingest(exam=exam, upload=fh, zone=zone, by=by, filename=path.name)
    except ServiceError as exc:
        report.skipped.append(f"{path.name}: {exc.message}")
        log(f"  skipped {path.name}: {exc.message}")
        return None
    report.clips += 1
    report.clips_created += int(result.created)
    return result.clip


# --- COVID-BLUES -------------------------------------------------------------------------------

_CB_FILE = re.compile(r"^patient_(\d+)_([LR][1-3])(_2)?\.mp4$", re.IGNORECASE)


def _cb_clinical(row: dict[str, str]) -> dict[str, Any]:
    """The clinical record of a COVID-BLUES row: the mapping shared with severity training
    (``scoring.core.training.covid_blues.clinical_record``); sex belongs to the patient, not the record."""
    record = clinical_record(row)
    record.pop("sex")
    return record


def import_covid_blues(root: Path | str, *, by: Any, study_name: str = COVID_BLUES_STUDY,
                       limit_patients: int | None = None, deidentify: bool = False, signed_by: Any = None,
                       log: Log = lambda message: None) -> ImportReport:
    """Import the COVID-BLUES folder (``lus_videos/``, ``severity.csv``, ``clinical_variables.csv``).
    ``signed_by``: a user whose clinician readings the expert scores also become, each exam signed
    (:mod:`patients.research.signing`): the labels a site model trains on."""
    root = Path(root)
    videos = root / "lus_videos"
    if not videos.is_dir():
        raise DatasetError(f"{videos} is missing: expected the COVID-BLUES folder", code="missing_folder")
    if limit_patients is not None and limit_patients < 1:
        raise DatasetError("--limit-patients must be at least 1", code="bad_limit")
    severity = {r["video_file"].strip(): r for r in _read_csv(root / "severity.csv")}
    clinical = {r["patient_id"].strip(): r for r in _read_csv(root / "clinical_variables.csv")}
    files: dict[str, list[tuple[str, bool, Path]]] = defaultdict(list)
    for path in sorted(videos.iterdir()):
        m = _CB_FILE.match(path.name)
        if m:
            files[m.group(1)].append((m.group(2).upper(), bool(m.group(3)), path))
    ids = sorted(files, key=int)[:limit_patients]
    study = study_for_import(
        name=study_name, protocol="blue-6", by=by, deidentify=deidentify, keep_original=not deidentify,
        description="COVID-BLUeS (Wiedemann et al., IEEE JBHI 2025), CC BY-NC-ND 4.0: imported in place from the "
                    "shared data folder; expert Soldati scores as rater 'covid-blues-expert'.")
    report = ImportReport(study=study)
    at = COVID_BLUES_EXAM_AT
    labelled: dict[Exam, list[ExpertLabel]] = defaultdict(list)
    for pid in ids:
        row = clinical.get(pid, {})
        sex = {0.0: Sex.FEMALE, 1.0: Sex.MALE}.get(number(row.get("pat_sex")) or -1.0, Sex.UNKNOWN)
        patient = _patient(study, f"CB-{pid}", by, report, sex=sex)
        firsts = sorted((z, p) for z, second, p in files[pid] if not second)
        repeats = sorted((z, p) for z, second, p in files[pid] if second)
        device = {"device": "Philips Lumify", "probe": "convex", "protocol": "blue-6"}
        note = f"COVID-BLUES patient {pid}."
        if repeats:
            note += f" Second clips of {', '.join(z for z, _ in repeats)} are in the repeat exam 10 minutes later."
        exams = [(_exam(patient, at, by, notes=note, **device), firsts)]
        if repeats:
            exams.append((_exam(patient, at + REPEAT_OFFSET, by, notes=(
                f"COVID-BLUES patient {pid}: repeat acquisition (files ..._2.mp4) of "
                f"{', '.join(z for z, _ in repeats)}."), **device), repeats))
        for exam, clips in exams:
            report.exams += 1
            for zone, path in clips:
                clip = _clip(exam, path, zone, by, report, log)
                expert = _cb_expert(clip, severity.get(path.stem), by) if clip is not None else None
                if expert is not None:
                    labelled[exam].append(expert)
                    report.annotations += 1
        if row:
            _cb_records(patient, row, at - dt.timedelta(hours=1), by, report, log)
        log(f"CB-{pid}: {sum(len(c) for _, c in exams)} clips in {len(exams)} exam(s)")
    if signed_by is not None:
        report.signed_exams, unsigned = expert_readings_sign(study=study, by=by, signer=signed_by, exams=labelled,
                                                             log=log)
        report.skipped += [f"not signed: {reason}" for reason in unsigned]
    return report


def _cb_expert(clip: ZoneClip, label: dict[str, str] | None, by: Any) -> ExpertLabel | None:
    """The expert's score of a clip (``severity.csv`` row), stored as the imported rater's reading."""
    if label is None or number(label.get("Severity Score")) is None:
        return None
    expert = ExpertLabel(clip, int(number(label["Severity Score"]) or 0),
                         {"a_lines": label.get("A-lines", "").strip().lower() == "yes",
                          "b_lines": label.get("B-lines", "").strip().lower() == "yes"},
                         (label.get("comments") or "").strip())
    imported_reading_set(clip=clip, rater_name=COVID_BLUES_RATER, by=by, score=expert.score,
                         findings=expert.findings, comment=expert.comment)
    return expert


def _cb_records(patient: Patient, row: dict[str, str], at: dt.datetime, by: Any, report: ImportReport,
                log: Log) -> None:
    if not ClinicalInfo.objects.filter(patient=patient, recorded_at=at).exists():
        try:
            clinical_info_create(patient=patient, by=by, recorded_at=at, **_cb_clinical(row))
        except ServiceError as exc:
            report.skipped.append(f"{patient.code} clinical record: {exc.message}")
            log(f"  skipped the clinical record of {patient.code}: {exc.message}")
            return
    report.clinical_records += 1
    gas = {"paco2": number(row.get("pCO2_find")), "pao2": number(row.get("pO2_find")),
           "ph": number(row.get("pH_find")), "hco3": number(row.get("HCO3_find"))}
    if all(v is None for v in gas.values()) or BloodGas.objects.filter(patient=patient, sampled_at=at).exists():
        report.blood_gases += int(any(v is not None for v in gas.values()))
        return
    try:
        blood_gas_create(patient=patient, by=by, sampled_at=at, unit="kPa", **gas)
    except ServiceError as exc:
        report.skipped.append(f"{patient.code} blood gas: {exc.message}")
        log(f"  skipped the blood gas of {patient.code}: {exc.message}")
        return
    report.blood_gases += 1


# --- POCUS ---------------------------------------------------------------------------------------

_POCUS_FINDINGS = {"B-lines": "b_lines", "A-lines": "a_lines", "Consolidations": "consolidation",
                   "Effusion": "effusion", "Pleural line irregularities": "pleural_irregularity",
                   "Air bronchogram": "air_bronchogram"}
_DAY = re.compile(r"Day\+(\d+)", re.IGNORECASE)


def _pocus_files(root: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix.lower() != ".csv" and not path.name.startswith("."):
            found.setdefault(path.stem.lower(), path)
    return found


def _pocus_patient_code(row: dict[str, str], stem: str) -> str:
    pid = (row.get("Patient ID / Name") or "").strip()
    source = (row.get("Source ID") or "").strip()
    if pid.isdigit() and source.isdigit():
        return f"POCUS-S{source}-P{pid}"
    code = f"POCUS-{stem}"
    return code if len(code) <= 64 else f"{code[:51]}-{hashlib.sha256(stem.encode()).hexdigest()[:12]}"


def import_pocus(root: Path | str, *, by: Any, study_name: str = POCUS_STUDY, limit: int | None = None,
                 match: str = "", deidentify: bool = False, log: Log = lambda message: None) -> ImportReport:
    """Import the POCUS folder (``dataset_metadata.csv`` and the media files below the folder)."""
    root = Path(root)
    if limit is not None and limit < 1:
        raise DatasetError("--limit must be at least 1", code="bad_limit")
    rows = _read_csv(root / "dataset_metadata.csv")
    files = _pocus_files(root)
    wanted: list[tuple[dict[str, str], Path]] = []
    seen: set[Path] = set()
    for row in sorted(rows, key=lambda r: (r.get("Filename") or "").strip().lower()):
        path = files.get((row.get("Filename") or "").strip().lower())
        if path is None or path in seen or match.lower() not in path.name.lower():
            continue
        seen.add(path)
        wanted.append((row, path))
    wanted = wanted[:limit]
    study = study_for_import(
        name=study_name, protocol="12-zone", by=by, deidentify=deidentify, keep_original=not deidentify,
        description="POCUS public lung-ultrasound data (Born et al. 2021); per-file licences in the clip comments; "
                    "labels as rater 'pocus-labels' (severity: Gare et al. 2022, CC BY-NC 4.0).")
    report = ImportReport(study=study)
    for row, path in wanted:
        sex = {"m": Sex.MALE, "w": Sex.FEMALE, "f": Sex.FEMALE}.get((row.get("Gender") or "").strip().lower(),
                                                                    Sex.UNKNOWN)
        patient = _patient(study, _pocus_patient_code(row, path.stem), by, report, sex=sex)
        day = _DAY.search(path.stem)
        at = POCUS_EXAM_AT + dt.timedelta(days=int(day.group(1)) if day else 0)
        area = (row.get("Area according to DEGUM") or "").strip()
        zone = f"R{area}" if area in {"1", "2", "3", "4", "5", "6"} else "R1"
        notes = f"POCUS file {path.name}" + ("" if area else "; zone unknown (filed under R1)")
        exam = Exam.objects.filter(patient=patient, notes=notes).first() or exam_create(
            patient=patient, acquired_at=at, by=by, notes=notes, probe=(row.get("Probe") or "").strip()[:200],
            protocol="12-zone", other_protocol=True)
        report.exams += 1
        clip = _clip(exam, path, zone, by, report, log)
        if clip is None:
            continue
        score = number(row.get("Lung Severity Score"))
        findings = {key: row.get(col, "").strip() == "1" for col, key in _POCUS_FINDINGS.items()
                    if row.get(col, "").strip() in ("0", "1")}
        if score is not None or findings:
            imported_reading_set(
                clip=clip, rater_name=POCUS_RATER, by=by, score=int(score) if score is not None else None,
                findings=findings, comment="; ".join(p for p in (
                    (row.get("Label") or "").strip(), f"probe {(row.get('Probe') or '').strip()}",
                    f"licence {(row.get('License') or '').strip()}") if p))
            report.annotations += 1
        log(f"{path.name}: {patient.code} zone {zone}")
    return report
