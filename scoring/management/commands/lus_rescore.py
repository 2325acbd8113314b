"""Rescore a study's exams with the active model version; earlier results are kept."""
from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from patients.studies.models import Study
from scoring.services import model_version_active, study_rescore


class Command(BaseCommand):
    help = "Queue every exam of a study for scoring with the active model version (history is kept)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--study", type=int, required=True, help="study id")
        parser.add_argument("--force", action="store_true",
                            help="also rescore exams already scored by the active version")

    def handle(self, *args: Any, **options: Any) -> None:
        study = Study.objects.filter(pk=options["study"]).first()
        if study is None:
            raise CommandError(f"no study with id {options['study']}")
        version = model_version_active()
        jobs = study_rescore(study=study, force=options["force"])
        self.stdout.write(f"{len(jobs)} exams of {study.name!r} queued for scoring with {version.version}")
