"""Management commands that forward their arguments untouched to a pure CLI function.

``manage.py lus_train ...``, ``call_command("lus_train", ...)`` and the Django-free
``python -m scoring.core.cli train ...`` then behave the same.
"""
from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser


def forwarding_command(name: str, module: str, function: str) -> type[BaseCommand]:
    """A Command class for ``manage.py <name>`` that calls ``module.function(argv) -> exit code``."""

    def target() -> Callable[[list[str]], int]:
        return getattr(importlib.import_module(module), function)  # type: ignore[no-any-return]

    class Command(BaseCommand):
        help = f"Forwarded to {module}.{function} (see python -m {module} --help)."

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
            rc = target()(argv[2:])
            if rc:
                raise SystemExit(rc)

        def handle(self, *args: Any, **options: Any) -> None:
            rc = target()(list(args))
            if rc:
                raise CommandError(f"{name} failed with exit code {rc}")

    return Command
