"""Logging: one line per refused request.

Django 5.2 logs every 403 and 404 with the exception's traceback (a 404 is a page that
does not exist, or a record outside the reader's scope: routine, not an error), and with
DEBUG on its own console handler printed each one a second time beside ours.
"""

from __future__ import annotations

import logging


class ClientErrorsWithoutTraceback(logging.Filter):
    """A 4xx answer is logged as its one message line; 5xx keep their traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if isinstance(status, int) and 400 <= status < 500:
            record.exc_info = None
            record.exc_text = None
        return True
