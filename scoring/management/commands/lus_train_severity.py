"""``manage.py lus_train_severity`` - thin wrapper over :func:`scoring.core.severity.cli.main`
(train and evaluate the patient-severity models, DSA-MIL + MA-CLR; see --help)."""
from __future__ import annotations

from scoring.management.forward import forwarding_command

Command = forwarding_command("lus_train_severity", "scoring.core.severity.cli", "main")
