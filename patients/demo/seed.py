"""The demo study: three users, a synthetic longitudinal cohort with phantom clips, clinical
records and blood gases (``manage.py demo_seed``). Idempotent: seeding again resets the demo
passwords, leaves existing demo patients alone and adds the ones missing.

``make demo`` seeds the first patients before the server starts and queues one bulk task per
remaining patient (``patients.demo.tasks``, queue ``gpu-bulk``): the site is in front of the user
within a minute instead of after minutes of seeding, and the worker fills the cohort in while
they look around, behind any upload or review of theirs. Each patient's data come from a random
generator of its own (the seed and its index), so a patient seeded later, or again, is the same."""
from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone

from lusweb.broker import task_send
from patients.imaging.core.phantoms import phantom_cohort_clip, write_dicom, write_mp4
from patients.imaging.ingest import clip_ingest
from patients.readings.services import exam_sign, imported_reading_set, reading_create
from patients.records.models import Exam, Patient
from patients.records.services import blood_gas_create, clinical_info_create, exam_create, patient_create
from patients.records.units import KPA_TO_MMHG
from patients.studies.models import Membership, Role, Study
from patients.studies.protocols import get_protocol
from patients.studies.services import study_create

DEMO_STUDY = "Demo ward (synthetic)"
PHANTOM_RATER = "phantom-design"
DEMO_DESCRIPTION = (
    "Synthetic patients followed from admission to rehabilitation. Phantom clips, not real data. "
    "The scorer was trained on real clips (COVID-BLUES, Philips Lumify): it flags every phantom as unlike "
    "its training clips and reads most of them as score 2. The demo clinician has read and signed every exam "
    "but each patient's latest, with the score each phantom was drawn with (also stored as rater "
    f"'{PHANTOM_RATER}', see Agreement); the latest exams wait on the review worklist."
)
DEMO_USERS = [
    ("demo_admin", "lusweb-admin-demo", Role.STUDY_ADMIN),
    ("demo_clinician", "lusweb-clinician-demo", Role.CLINICIAN),
    ("demo_researcher", "lusweb-researcher-demo", Role.RESEARCHER),
]


@dataclass(frozen=True)
class DemoOptions:
    patients: int = 10
    exams: int = 5  # per patient (4-6 in the demo)
    frames: int = 24  # per phantom clip
    size: int = 160  # phantom clip rows and columns
    seed: int = 7
    first: int | None = None  # patients seeded before demo_seed returns; None: all of them

    def to_task(self) -> dict[str, int]:
        """The options a background task needs (JSON)."""
        return {"patients": self.patients, "exams": self.exams, "frames": self.frames, "size": self.size,
                "seed": self.seed}


#: One patient of the demo, seeded by the worker (``patients.demo.tasks``).
DEMO_PATIENT_TASK = "patients.demo.tasks.demo_patient_seed"
DEMO_QUEUE = "gpu-bulk"  # bulk work: a user's uploads and scoring jobs go first


def demo_seed(options: DemoOptions, *, log: Callable[[str], None] = lambda message: None) -> Study:
    """Create (or find) the demo users and study and give it the patients it lacks: the first
    ``options.first`` now, the rest queued for the worker, one task each."""
    users = demo_users()
    study = _demo_study(users)
    have = set(study.patients.values_list("code", flat=True))
    missing = [i for i in range(options.patients) if demo_patient_code(i) not in have]
    if have:
        log(f"demo study already has {len(have)} patients; leaving them")
    now = missing if options.first is None else missing[: options.first]
    for index in now:
        patient = demo_patient_seed(study=study, index=index, options=options)
        if patient is not None:
            log(f"  {patient.code}: {options.exams} exams x {len(get_protocol(study.protocol).codes)} zones")
    later = missing[len(now):]
    queued = [i for i in later if task_send(DEMO_PATIENT_TASK, args=(study.pk, i, options.to_task()), queue=DEMO_QUEUE)]
    if queued:
        log(f"  {demo_patient_code(queued[0])}..{demo_patient_code(queued[-1])}: queued; the worker seeds them "
            "in the background (they appear on the study page one by one)")
    if len(queued) < len(later):
        log(f"  {len(later) - len(queued)} patients could not be queued (broker unreachable): "
            "run demo_seed again once it is back")
    return study


def demo_patient_code(index: int) -> str:
    """The code of the demo's ``index``-th patient (from 0)."""
    return f"DEMO-{index + 1:03d}"


def demo_patient_seed(*, study: Study, index: int, options: DemoOptions) -> Patient | None:
    """Seed the demo's ``index``-th patient with its course; None when it exists already (a task
    delivered twice, a second demo_seed)."""
    if study.patients.filter(code=demo_patient_code(index)).exists():
        return None
    clinician = get_user_model().objects.get(username="demo_clinician")
    rng = np.random.default_rng([options.seed, index])
    zones = get_protocol(study.protocol).codes
    start = timezone.now() - dt.timedelta(days=40)
    admitted = start + dt.timedelta(days=int(rng.integers(0, 10)))
    try:
        with tempfile.TemporaryDirectory(prefix="lusweb-demo-") as tmp, transaction.atomic():
            patient = patient_create(
                study=study, code=demo_patient_code(index), by=clinician, sex=str(rng.choice(["F", "M"])),
                birth_year=int(rng.integers(1940, 1995)), admission_date=admitted.date(),
                name=f"Demo Patient {index + 1}", hospital_number=f"H{100000 + index}",
            )
            _patient_course(patient, clinician, admitted, zones, rng, Path(tmp), options)
    except IntegrityError:
        return None  # seeded meanwhile by another process: the unique code decided
    return patient


def demo_users() -> dict[str, Any]:
    """The three demo users (username -> user) with their documented passwords."""
    user_model = get_user_model()
    users: dict[str, Any] = {}
    for username, password, role in DEMO_USERS:
        user, _ = user_model.objects.get_or_create(username=username)
        user.set_password(password)
        if role == Role.STUDY_ADMIN:
            user.is_staff = True
            user.save()
            user.user_permissions.add(Permission.objects.get(codename="add_study"))
        user.save()
        users[username] = user
    return users


def _demo_study(users: dict[str, Any]) -> Study:
    study = Study.objects.filter(name=DEMO_STUDY).first()
    if study is None:
        study = study_create(
            name=DEMO_STUDY, protocol="12-zone", created_by=users["demo_admin"],
            description=DEMO_DESCRIPTION,
        )
    for username, _password, role in DEMO_USERS:
        Membership.objects.update_or_create(study=study, user=users[username], defaults={"role": role})
    return study


def _patient_course(patient: Patient, clinician: Any, admitted: dt.datetime, zones: tuple[str, ...],
                    rng: np.random.Generator, tmp: Path, options: DemoOptions) -> None:
    # Each zone starts at a severity and recovers over the stay, with noise: the course a ward
    # team follows from admission to rehabilitation.
    peak = rng.integers(0, 4, size=len(zones)).astype(float) * rng.uniform(0.6, 1.0)
    clinical_info_create(
        patient=patient, by=clinician, recorded_at=admitted, age=admitted.year - (patient.birth_year or 1960),
        diabetes=bool(rng.random() < 0.2), hypertension=bool(rng.random() < 0.35),
        cardiovascular=bool(rng.random() < 0.2), respiratory=bool(rng.random() < 0.15),
        fever=bool(rng.random() < 0.7), cough=bool(rng.random() < 0.7), dyspnea=bool(rng.random() < 0.6),
        oxygen_support="nasal_cannula" if peak.mean() > 1.2 else "none",
        spo2=float(round(97 - 2.5 * peak.mean() + rng.normal(0, 1), 1)),
        respiratory_rate=float(round(16 + 3 * peak.mean() + rng.normal(0, 2), 0)),
    )
    for e in range(options.exams):
        when = admitted + dt.timedelta(days=e * 4 + float(rng.uniform(0, 1.5)))
        recovery = max(0.0, 1.0 - e / max(options.exams - 1, 1) * rng.uniform(0.7, 1.1))
        scores = np.clip(np.rint(peak * recovery + rng.normal(0, 0.35, size=len(zones))), 0, 3).astype(int)
        exam = exam_create(patient=patient, acquired_at=when, by=clinician, device="LUSWeb phantom",
                           probe="convex C5-2", operator="demo")
        # The ward reads and signs every exam but the latest one, which waits on the worklist.
        review = e < options.exams - 1
        for z, (zone, score) in enumerate(zip(zones, scores, strict=True)):
            if rng.random() < 0.06:
                continue  # a zone the team could not scan: shows as missing
            _phantom_clip(exam, zone, int(score), use_dicom=z % 2 == 0, clinician=clinician, rng=rng, tmp=tmp,
                          options=options, review=review)
        if review and exam.clips.exists():
            exam_sign(exam=exam, by=clinician)
        luss = int(scores.sum())
        # PaCO2 follows the lung score with noise (Hu et al. 2021: r = 0.73).
        unit = "kPa" if rng.random() < 0.5 else "mmHg"
        blood_gas_create(
            patient=patient, by=clinician, sampled_at=when + dt.timedelta(hours=float(rng.uniform(-6, 6))),
            unit=unit, **_gas(luss, rng, unit),
        )


def _phantom_clip(exam: Exam, zone: str, score: int, *, use_dicom: bool, clinician: Any, rng: np.random.Generator,
                  tmp: Path, options: DemoOptions, review: bool) -> None:
    """A phantom clip of ``score`` uploaded to the zone (DICOM or MP4), its drawn score and findings
    as an imported rater and - ``review`` - as the demo clinician's reading."""
    patient = exam.patient
    phantom = phantom_cohort_clip(score, seed=int(rng.integers(0, 2**31)), n_frames=options.frames,
                                  rows=options.size, columns=options.size)
    path = tmp / f"{exam.pk}-{zone}.{'dcm' if use_dicom else 'mp4'}"
    if use_dicom:
        write_dicom(phantom, path, jpeg=True, patient_name=patient.name, patient_id=patient.hospital_number)
    else:
        write_mp4(phantom, path)
    ingested = clip_ingest(exam=exam, upload=SimpleUploadedFile(path.name, path.read_bytes()), zone=zone,
                           by=clinician, filename=path.name)
    # The score the phantom was drawn with, as a rater: the agreement page then shows how the
    # model (trained on real clips) reads synthetic ones.
    findings = {k: bool(v.any()) for k, v in phantom.frame_findings.items()}
    imported_reading_set(clip=ingested.clip, rater_name=PHANTOM_RATER, by=clinician, score=phantom.clip_score,
                         findings=findings, comment="score and findings drawn into the phantom")
    if review:
        # The clinician reads what was drawn: the demo's score of record, a real course over the stay.
        reading_create(clip=ingested.clip, by=clinician, score=phantom.clip_score, findings=findings)


def _gas(luss: int, rng: np.random.Generator, unit: str) -> dict[str, Any]:
    """A plausible arterial gas for a global LUS score, entered in ``unit`` as a ward would."""
    paco2_mmhg = 36 + 0.45 * luss + rng.normal(0, 2.5)
    pao2_mmhg = 95 - 1.2 * luss + rng.normal(0, 6)
    scale = 1 / KPA_TO_MMHG if unit == "kPa" else 1.0
    return {"paco2": round(paco2_mmhg * scale, 2), "pao2": round(pao2_mmhg * scale, 2),
            "fio2": round(min(1.0, 0.21 + 0.012 * luss), 2),
            "ph": round(7.42 - 0.002 * luss + rng.normal(0, 0.015), 2)}
