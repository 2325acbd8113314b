"""``manage.py import_covid_blues <dir> [--study NAME] [--limit-patients N] [--signed-by USERNAME]``
(see patients.research.importers)."""
from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from patients.management.importing import DatasetImportCommand
from patients.research import importers


class Command(DatasetImportCommand):
    help = "Import the COVID-BLUES dataset folder (clips, expert scores, clinical variables, blood gases)."
    dataset = "COVID-BLUES"
    default_study = importers.COVID_BLUES_STUDY

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--limit-patients", type=int, default=None, help="import only the first N patients")
        parser.add_argument("--signed-by", default=None, metavar="USERNAME",
                            help="also store the expert scores as this clinician's readings and sign each exam "
                                 "(the labels a site model trains on)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            signer = importers.importer_user(options["signed_by"]) if options["signed_by"] else None
        except importers.DatasetError as exc:
            raise CommandError(exc.message) from exc
        self.run_import(importers.import_covid_blues, options, limit_patients=options["limit_patients"],
                        signed_by=signer)
