"""Quoted SQL names of models' tables and columns, for the few statements written by hand (the
page cache's fingerprint and change-log triggers, the header's alert count, the session read):
they follow the models' ``db_table`` and ``db_column`` instead of repeating them."""
from __future__ import annotations

from django.db import connection, models


def table(model: type[models.Model]) -> str:
    """The model's table, quoted for this connection."""
    return connection.ops.quote_name(model._meta.db_table)


def column(model: type[models.Model], field: str) -> str:
    """The column of the model's ``field`` (a foreign key's ``<name>_id``), quoted."""
    return connection.ops.quote_name(str(model._meta.get_field(field).column))  # type: ignore[union-attr]


def pk(model: type[models.Model]) -> str:
    """The model's primary key column, quoted."""
    return connection.ops.quote_name(str(model._meta.pk.column))  # type: ignore[union-attr]
