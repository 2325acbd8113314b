"""``manage.py demo_seed``: the demo study, its three users and a synthetic cohort (see patients.demo.seed)."""
from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from patients.demo.seed import DEMO_USERS, DemoOptions, demo_seed


class Command(BaseCommand):
    help = "Create the demo study, its three users and a synthetic cohort of phantom exams."

    def add_arguments(self, parser: Any) -> None:
        defaults = DemoOptions()
        parser.add_argument("--patients", type=int, default=defaults.patients)
        parser.add_argument("--exams", type=int, default=defaults.exams, help="exams per patient (4-6 in the demo)")
        parser.add_argument("--frames", type=int, default=defaults.frames, help="frames per phantom clip")
        parser.add_argument("--size", type=int, default=defaults.size, help="phantom clip rows and columns")
        parser.add_argument("--seed", type=int, default=defaults.seed)
        parser.add_argument("--first", type=int, default=None,
                            help="seed this many patients now and queue the rest for the worker "
                                 "(make demo: 2); default: all now")

    def handle(self, *args: Any, **options: Any) -> None:
        demo_seed(DemoOptions(patients=options["patients"], exams=options["exams"], frames=options["frames"],
                              size=options["size"], seed=options["seed"], first=options["first"]),
                  log=self.stdout.write)
        self.stdout.write(self.style.SUCCESS("\nDemo accounts (log in at http://127.0.0.1:8000/login/):"))
        for username, password, role in DEMO_USERS:
            self.stdout.write(f"  {role:<12} username: {username:<16} password: {password}")
