"""What the dataset import commands share: common arguments, running an importer, its report."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from lusweb.errors import ServiceError
from patients.research import importers


class DatasetImportCommand(BaseCommand):
    """A command that runs one importer of ``patients.research.importers``."""

    dataset = ""  # as the help of the directory argument names it
    default_study = ""

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("directory", help=f"the {self.dataset} folder, e.g. ../shared/data/{self.dataset.lower()}")
        parser.add_argument("--study", default=self.default_study, help="study name (created if missing)")
        parser.add_argument("--user", default=None, help="acting user (default: the lusweb-importer account)")
        parser.add_argument("--deidentify", action="store_true", help="de-identify the clips like uploads")

    def run_import(self, importer: Callable[..., importers.ImportReport], options: dict[str, Any],
                   **extra: Any) -> None:
        """Run ``importer`` with the common options and ``extra``; print what it skipped and its summary."""
        try:
            report = importer(
                options["directory"], by=importers.importer_user(options["user"]), study_name=options["study"],
                deidentify=options["deidentify"], log=lambda m: self.stdout.write(m) if options["verbosity"] > 1 else None,
                **extra)
        except ServiceError as exc:
            raise CommandError(exc.message) from exc
        for reason in report.skipped:
            self.stderr.write(f"skipped: {reason}")
        self.stdout.write(self.style.SUCCESS(report.summary()))
