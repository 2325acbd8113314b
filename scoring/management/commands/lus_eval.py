"""``manage.py lus_eval`` - thin wrapper over :func:`scoring.core.cli.eval_main`."""
from __future__ import annotations

from scoring.management.forward import forwarding_command

Command = forwarding_command("lus_eval", "scoring.core.cli", "eval_main")
