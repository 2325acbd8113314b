"""``manage.py import_pocus <dir> [--study NAME] [--limit N] [--match TEXT]`` (see patients.research.importers)."""
from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from patients.management.importing import DatasetImportCommand
from patients.research import importers


class Command(DatasetImportCommand):
    help = "Import the POCUS dataset folder (clips with their severity and finding labels)."
    dataset = "POCUS"
    default_study = importers.POCUS_STUDY

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--limit", type=int, default=None, help="import only the first N files (by name)")
        parser.add_argument("--match", default="", help="only files whose name contains this text")

    def handle(self, *args: Any, **options: Any) -> None:
        self.run_import(importers.import_pocus, options, limit=options["limit"], match=options["match"])
