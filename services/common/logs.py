"""JSON-lines logging with card-number and credential masking.

Every record becomes one JSON object on stdout (the awslogs driver ships each line to CloudWatch Logs). Two layers keep
card data and credentials out of the logs: :class:`SensitiveDataFilter` masks the rendered message of every record, and
:class:`JsonFormatter` masks every string and integer field again when it serialises, so a PAN smuggled into an extra
field, an exception message or a traceback is masked too. The code never logs request bodies, tokens or passwords in
the first place; the masking is the safety net.

Access lines carry a CloudWatch embedded-metric-format (EMF) block under ``_aws`` so request counts and latency become
metrics in ``METRICS_NAMESPACE`` without an agent or extra API calls.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
from datetime import UTC, datetime
from typing import Any, TextIO

from services.common.pan import mask_pans

__all__ = [
    "JsonFormatter",
    "SensitiveDataFilter",
    "configure_logging",
    "mask_sensitive",
    "request_id_var",
]

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
"""The current request's id (set by the request middleware), added to every log line emitted while serving it."""

# Presigned-URL credentials (RDS / ElastiCache IAM tokens) and anything shaped like key=secret: never in a log line.
_SECRET_PATTERNS = (
    re.compile(r"(X-Amz-(?:Signature|Security-Token|Credential)=)[^&\s\"']+", re.IGNORECASE),
    re.compile(r"((?:password|passwd|pwd|token|secret)\s*[=:]\s*)[^\s,;&\"']+", re.IGNORECASE),
)
_REDACTED = "[REDACTED]"

# Attributes every LogRecord has; anything else passed via ``extra=`` becomes a JSON field.
# color_message: uvicorn's ANSI-coloured duplicate of the message.
_RESERVED = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName", "color_message"}


def mask_sensitive(text: str) -> str:
    """``text`` with PAN-like digit runs and presigned-token credentials masked."""
    text = mask_pans(text)
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + _REDACTED, text)
    return text


def _mask_value(value: object) -> object:
    if isinstance(value, str):
        return mask_sensitive(value)
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):
        masked = mask_pans(str(value))
        return value if masked == str(value) else masked
    if isinstance(value, dict):
        return {str(mask_sensitive(str(k))): _mask_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask_value(v) for v in value]
    return mask_sensitive(str(value))


class SensitiveDataFilter(logging.Filter):
    """Render each record's message and replace it with a masked copy (PANs, token credentials)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Mask in place; never drops a record."""
        try:
            message = record.getMessage()
        except Exception:  # a broken %-format must not lose the record
            message = str(record.msg)
        record.msg = mask_sensitive(message)
        record.args = None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, message, service, environment, request_id, extra fields."""

    def __init__(self, service: str, environment: str) -> None:
        super().__init__()
        self.service = service
        self.environment = environment

    def format(self, record: logging.LogRecord) -> str:
        """Serialise ``record`` (masking every string and integer field except the EMF metadata we generate)."""
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "service": self.service,
        }
        if self.environment:
            line["environment"] = self.environment
        request_id = request_id_var.get()
        if request_id:
            line["request_id"] = request_id
        emf = None
        for key, value in vars(record).items():
            if key in _RESERVED or key.startswith("_"):
                continue
            if key == "emf":
                emf = value
                continue
            line[key] = value
        if record.exc_info:
            line["exc_type"] = record.exc_info[0].__name__ if record.exc_info[0] else None
            line["exc"] = self.formatException(record.exc_info)
        masked = _mask_value(line)
        assert isinstance(masked, dict)
        if emf is not None:
            # Generated here from numbers we control (the EMF timestamp is a 13-digit epoch-ms that the PAN mask
            # could otherwise hit), so it is added after masking.
            masked["_aws"] = emf
        return json.dumps(masked, default=str, separators=(",", ":"))


def emf_block(namespace: str, dimensions: dict[str, str], metrics: dict[str, str]) -> dict[str, Any]:
    """The ``_aws`` metadata of an embedded-metric-format line (``metrics``: name -> unit)."""
    return {
        "Timestamp": int(time.time() * 1000),
        "CloudWatchMetrics": [
            {
                "Namespace": namespace,
                "Dimensions": [sorted(dimensions)],
                "Metrics": [{"Name": name, "Unit": unit} for name, unit in metrics.items()],
            }
        ],
    }


def configure_logging(service: str, environment: str, *, level: int = logging.INFO, stream: TextIO | None = None) -> None:
    """Send every logger's records, masked, as JSON lines to ``stream`` (stdout by default)."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter(service, environment))
    handler.addFilter(SensitiveDataFilter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    # uvicorn's own access log would print raw paths and query strings; we log one line per request ourselves.
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    # Chatty at INFO (one line per pool checkout) or, for botocore at DEBUG, printing canonical requests.
    for name in ("psycopg.pool", "botocore", "httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
