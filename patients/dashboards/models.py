"""The dashboards' own table: the change log that the page cache's fingerprint reads
(:mod:`patients.dashboards.pagechanges` fills it from database triggers)."""
from __future__ import annotations

from django.db import models


class PageChange(models.Model):
    """One committed (or still open) transaction that wrote rows a patient's pages show.

    ``scope`` and ``key`` name whose pages: ``p`` a patient, ``s`` a study, ``u`` a user's account,
    ``g`` every page (model versions; key 0). ``xact`` is the writing transaction's id, so that a
    transaction writing many rows adds one row per scope. Written only by the triggers."""

    scope = models.CharField(max_length=1)
    key = models.BigIntegerField()
    xact = models.BigIntegerField()

    class Meta:
        app_label = "patients"
        constraints = [models.UniqueConstraint(fields=["scope", "key", "xact"], name="pagechange_once_per_transaction")]

    def __str__(self) -> str:
        return f"{self.scope}{self.key} by transaction {self.xact}"
