"""Thin wrapper: ``python manage.py lus_train_severity ...`` -> scoring.core.severity.cli."""
from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Train and evaluate the patient-severity models (DSA-MIL + MA-CLR); see --help."

    def run_from_argv(self, argv: list[str]) -> None:
        from scoring.core.severity.cli import main

        code = main(argv[2:])
        if code:
            raise SystemExit(code)

    def handle(self, *args: Any, **options: Any) -> None:  # pragma: no cover - run_from_argv is used
        raise CommandError("use: python manage.py lus_train_severity --help")

