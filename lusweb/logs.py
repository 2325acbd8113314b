"""Logging filters of the site (``LOGGING`` in ``lusweb/settings/base.py``)."""
from __future__ import annotations

import logging


class ClientErrorsInOneLine(logging.Filter):
    """A refused request (403 PermissionDenied, 404, 400) is logged as its one line, without the
    traceback Django attaches: the client was refused on purpose, nothing failed on the server.
    Server errors (5xx) and every other record keep their traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if isinstance(status, int) and status < 500:
            record.exc_info = None
            record.exc_text = None
        return True
