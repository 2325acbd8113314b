"""``manage.py lus_score`` - thin wrapper over :func:`scoring.core.cli.score_main`.

All arguments are forwarded untouched to the pure CLI function (run
``python -m scoring.core.cli score --help`` for them), so ``manage.py lus_score ...``,
``call_command("lus_score", ...)`` and the Django-free CLI behave the same.
"""
from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = "Forwarded to scoring.core.cli.score_main (see python -m scoring.core.cli score --help)."

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        defaults = parser.parse_args([])

        def parse_args(args: Any = None, namespace: Any = None) -> argparse.Namespace:
            # Keep Django's standard defaults, hand every given token to the CLI function.
            ns = argparse.Namespace(**vars(defaults))
            ns.args = [str(a) for a in (args or [])]
            return ns

        parser.parse_args = parse_args  # type: ignore[method-assign,assignment]
        return parser

    def run_from_argv(self, argv: list[str]) -> None:
        from scoring.core.cli import score_main

        rc = score_main(argv[2:])
        if rc:
            raise SystemExit(rc)

    def handle(self, *args: Any, **options: Any) -> None:
        from scoring.core.cli import score_main

        rc = score_main(list(args))
        if rc:
            raise CommandError(f"lus_score failed with exit code {rc}")
