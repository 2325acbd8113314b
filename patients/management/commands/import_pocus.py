"""``manage.py import_pocus <dir> [--study NAME] [--limit N] [--match TEXT]`` (see patients.research.importers)."""
from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from lusweb.errors import ServiceError
from patients.research import importers


class Command(BaseCommand):
    help = "Import the POCUS dataset folder (clips with their severity and finding labels)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("directory", help="the POCUS folder, e.g. ../shared/data/pocus")
        parser.add_argument("--study", default=importers.POCUS_STUDY, help="study name (created if missing)")
        parser.add_argument("--limit", type=int, default=None, help="import only the first N files (by name)")
        parser.add_argument("--match", default="", help="only files whose name contains this text")
        parser.add_argument("--user", default=None, help="acting user (default: the lusweb-importer account)")
        parser.add_argument("--deidentify", action="store_true", help="de-identify the clips like uploads")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            report = importers.import_pocus(
                options["directory"], by=importers.importer_user(options["user"]), study_name=options["study"],
                limit=options["limit"], match=options["match"], deidentify=options["deidentify"],
                log=lambda m: self.stdout.write(m) if options["verbosity"] > 1 else None)
        except ServiceError as exc:
            raise CommandError(exc.message) from exc
        for reason in report.skipped:
            self.stderr.write(f"skipped: {reason}")
        self.stdout.write(self.style.SUCCESS(report.summary()))
