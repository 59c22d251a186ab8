"""Customer data never reaches the service's log as it was: planted e-mail addresses, card numbers, IBANs, IP
addresses, phone numbers and account numbers, in a log record's message, fields and traceback and in requests
the service refuses or answers, are masked in every line it writes."""

import io
import json
import logging
import time

import pytest
from fastapi.testclient import TestClient

from aigc.core.checkpoint import latest_checkpoint
from aigc.serving.app import create_app
from aigc.serving.logs import JsonFormatter
from aigc.serving.settings import load_settings

PLANTED = [
    "jane.doe+orders@example.co.uk",
    "GB82 WEST 1234 5698 7654 32",
    "4111 1111 1111 1111",
    "203.0.113.195",
    "+44 20 7946 0958",
    "0012345678",
]
TEXT = "my details: " + ", ".join(PLANTED)


def test_a_record_is_masked_in_its_message_fields_and_traceback():
    try:
        raise ValueError(f"cannot read {TEXT}")
    except ValueError:
        record = logging.LogRecord("aigc.serve", logging.ERROR, __file__, 1, "failed on %s", (TEXT,), True)
        record.exc_info = __import__("sys").exc_info()
    record.fields = {"prompt": TEXT, "nested": [{"text": TEXT}], "status": 500}
    line = json.loads(JsonFormatter().format(record))
    assert not [value for value in PLANTED if value in json.dumps(line)]
    assert line["status"] == 500 and line["time"][:2] == "20"  # what is not the client's stays as it was
    assert "{{Email}}" in line["message"] and "{{Card Number}}" in line["nested"][0]["text"]
    assert "{{IBAN}}" in line["error"] and "ValueError" in line["error"]


@pytest.fixture
def service_log():
    """What the service logs during a test, as its handlers format it."""
    written, log = io.StringIO(), logging.getLogger("aigc.serve")
    handler = logging.StreamHandler(written)
    handler.setFormatter(JsonFormatter())
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    yield written
    log.removeHandler(handler)
    log.setLevel(level)


def test_no_planted_value_reaches_the_log_of_a_serving_session(classifier_run, service_log):
    settings = load_settings(models={"reviews": latest_checkpoint(classifier_run)}, max_text_chars=100, burst=100)
    with TestClient(create_app(settings), client=("203.0.113.195", 50000)) as client:  # the client's address
        while client.get("/readyz").status_code != 200:
            time.sleep(0.05)
        assert client.post("/v1/classify", json={"input": TEXT}).status_code == 422  # over 100 characters
        assert client.post("/v1/classify", json={"input": TEXT[:90]}).status_code == 200
        assert client.post("/v1/classify", json={"input": [TEXT], "extra": TEXT}).status_code == 422
        assert client.post("/v1/completions", json={"prompt": TEXT}).status_code == 422
    log = service_log.getvalue()
    assert log.count('"client": "{{IP Address}}"') >= 4
    assert not [value for value in PLANTED if value in log]
