"""``manage.py lus_score`` - thin wrapper over :func:`scoring.core.cli.score_main`."""
from __future__ import annotations

from scoring.management.forward import forwarding_command

Command = forwarding_command("lus_score", "scoring.core.cli", "score_main")
