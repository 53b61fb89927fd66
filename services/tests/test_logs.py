"""JSON log lines: one object per record, card numbers and token credentials masked everywhere."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from services.common.logs import emf_block, request_id_var
from services.tests.support import captured_logging

PAN = "4111111111111111"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Root logging configured as in a service, into a buffer; restored afterwards."""
    with captured_logging("payment") as stream:
        yield stream


def records(stream: io.StringIO) -> list[dict[str, object]]:
    """Every line of the buffer as a JSON object."""
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_one_json_object_per_record_with_context(captured: io.StringIO) -> None:
    """ts, level, logger, message, service, environment, request id, extra fields."""
    token = request_id_var.set("req-12345678")
    try:
        logging.getLogger("services.test").info("hello %s", "world", extra={"payment_id": "p1", "status": 201})
    finally:
        request_id_var.reset(token)
    (line,) = records(captured)
    assert line["message"] == "hello world"
    assert line["level"] == "INFO" and line["logger"] == "services.test"
    assert line["service"] == "payment" and line["environment"] == "dev"
    assert line["request_id"] == "req-12345678"
    assert line["payment_id"] == "p1" and line["status"] == 201


def test_pans_are_masked_in_message_args_fields_and_tracebacks(captured: io.StringIO) -> None:
    """Whatever path a card number takes into a log record, it comes out masked."""
    log = logging.getLogger("services.test")
    log.warning("message with " + PAN)
    log.warning("args with %s", "4111 1111 1111 1111")
    log.warning("fields", extra={"note": f"card {PAN}", "number": int(PAN), "nested": {"k": [PAN]}})
    try:
        raise ValueError(f"bad input {PAN}")
    except ValueError:
        log.exception("failed")
    text = captured.getvalue()
    assert PAN not in text and "4111 1111 1111 1111" not in text
    assert text.count("[REDACTED-PAN]") >= 6
    assert records(captured)[3]["exc_type"] == "ValueError"


def test_presigned_token_credentials_are_masked(captured: io.StringIO) -> None:
    """An IAM token that slipped into a message loses its signature and session token."""
    token = (
        "db:5432/?Action=connect&DBUser=u&X-Amz-Credential=AKIA%2F20260101&X-Amz-Security-Token=SESSIONSECRET"
        "&X-Amz-Signature=abcdef0123456789"
    )
    logging.getLogger("services.test").error("connect failed with %s; password=hunter2", token)
    text = captured.getvalue()
    for secret in ("SESSIONSECRET", "abcdef0123456789", "AKIA", "hunter2"):
        assert secret not in text
    assert "X-Amz-Signature=[REDACTED]" in text


def test_emf_metadata_is_kept_intact(captured: io.StringIO) -> None:
    """The embedded-metric-format block (13-digit epoch-ms timestamp included) is not touched by the PAN mask."""
    emf = emf_block("ScalePayments/payment", {"Service": "payment", "Route": "GET /x"}, {"Latency": "Milliseconds"})
    emf["Timestamp"] = 4111111111111  # Luhn-valid 13 digits: would be masked if the block were not exempt
    logging.getLogger("access").info("request", extra={"emf": emf, "Latency": 1.5, "Service": "payment", "Route": "GET /x"})
    (line,) = records(captured)
    assert line["_aws"] == {
        "Timestamp": 4111111111111,
        "CloudWatchMetrics": [
            {
                "Namespace": "ScalePayments/payment",
                "Dimensions": [["Route", "Service"]],
                "Metrics": [{"Name": "Latency", "Unit": "Milliseconds"}],
            }
        ],
    }
    assert line["Latency"] == 1.5


def test_uvicorn_access_log_is_disabled(captured: io.StringIO) -> None:
    """uvicorn's own access log (raw paths and query strings) is off: the middleware logs path templates instead."""
    logging.getLogger("uvicorn.access").info('127.0.0.1 - "GET /api/payments?card=%s HTTP/1.1" 200', PAN)
    assert captured.getvalue() == ""
