"""`log_format=json`: the server's and uvicorn's log records as one JSON object a line (docs/operations.md).

`{"ts", "level", "logger", "msg"}`, the traceback as `exc` when there is one, and the record's `fields`
(a dict given as `extra={"fields": …}`, e.g. the start-up line's store, data, auth and surfaces) merged in.
The access log writes its own lines (support/accesslog.py) with the same `ts`, `level` and `logger` keys.
"""

from __future__ import annotations

import logging

import msgspec

from .accesslog import iso_now


class JsonFormatter(logging.Formatter):
    def __init__(self, *args: object, **kwargs: object) -> None:  # takes (and ignores) uvicorn's fmt options
        super().__init__()

    def format(self, record: logging.LogRecord) -> str:
        line = {"ts": iso_now(record.created), "level": record.levelname.lower(), "logger": record.name, "msg": record.getMessage()}
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        line.update(getattr(record, "fields", None) or {})
        return msgspec.json.encode(line).decode()
