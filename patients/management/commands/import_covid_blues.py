"""``manage.py import_covid_blues <dir> [--study NAME] [--limit-patients N]`` (see patients.research.importers)."""
from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from patients.management.importing import DatasetImportCommand
from patients.research import importers


class Command(DatasetImportCommand):
    help = "Import the COVID-BLUES dataset folder (clips, expert scores, clinical variables, blood gases)."
    dataset = "COVID-BLUES"
    default_study = importers.COVID_BLUES_STUDY

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--limit-patients", type=int, default=None, help="import only the first N patients")

    def handle(self, *args: Any, **options: Any) -> None:
        self.run_import(importers.import_covid_blues, options, limit_patients=options["limit_patients"])
