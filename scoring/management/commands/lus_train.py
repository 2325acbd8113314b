"""``manage.py lus_train`` - thin wrapper over :func:`scoring.core.training.cli.train_main`."""
from __future__ import annotations

from scoring.management.forward import forwarding_command

Command = forwarding_command("lus_train", "scoring.core.training.cli", "train_main")
