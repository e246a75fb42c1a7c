"""Secrets and personal data stay out of error text: engine errors, the alert, the app id."""

import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from dagster_project.core.masking import redact_personal_data
from dagster_project.env import from_env
from dagster_project.resources import (
    AlertDeliveryError,
    AlertWebhookResource,
    EsputnikResource,
    WarehouseResource,
)
from tests.helpers import API_KEY, APP_UUID

SECRET_PATH = "/services/T0001/B0002/s3cr3tW3bh00kK3y"


@pytest.mark.parametrize("raw", [APP_UUID + "\n", f"  {APP_UUID}\r\n", f"\t{APP_UUID}"])
def test_app_uuid_is_trimmed_once_where_it_is_read(monkeypatch, raw):
    monkeypatch.setenv("ESPUTNIK_API_KEY", API_KEY)
    monkeypatch.setenv("ESPUTNIK_APP_UUID", raw)
    with from_env(EsputnikResource).process_config_and_initialize_cm() as esputnik:
        assert esputnik.app_uuid == APP_UUID
        assert esputnik.client().app_uuid == APP_UUID
    assert EsputnikResource(api_key=API_KEY, app_uuid=raw).app_uuid == APP_UUID


class _Refusing(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(500)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def refusing_webhook():
    server = HTTPServer(("127.0.0.1", 0), _Refusing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}{SECRET_PATH}"
    server.shutdown()


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}{SECRET_PATH}?token=abc123"


@pytest.mark.parametrize("target", ["http_500", "connection_refused"])
def test_a_failed_alert_names_the_host_not_the_secret_url(request, target):
    url = request.getfixturevalue("refusing_webhook") if target == "http_500" else closed_port_url()
    with pytest.raises(AlertDeliveryError) as raised:
        AlertWebhookResource(url=url, timeout_seconds=5).send("run failed")
    message = str(raised.value)
    assert "s3cr3t" not in message and "T0001" not in message and "abc123" not in message
    assert "127.0.0.1" in message and "SYNC_ALERT_WEBHOOK_URL" in message
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_engine_errors_carry_no_row_values(warehouse_url):
    engine = WarehouseResource(url=warehouse_url).warehouse_engine()
    with pytest.raises(SQLAlchemyError) as raised, engine.begin() as conn:
        conn.execute(
            text("INSERT INTO no_such_table (email, phone) VALUES (:email, :phone)"),
            {"email": "olena.k@example.com", "phone": "+380501234567"},
        )
    message = str(raised.value)
    assert "no_such_table" in message
    assert "olena" not in message and "380501234567" not in message


@pytest.mark.parametrize(
    ("message", "kept", "hidden"),
    [
        ("email 'olena.k@example.com' refused", "o***@example.com", "olena.k"),
        ("phone +38 (050) 123-45-67 invalid", "***567", "123-45"),
        ("chat id 900000001 repeated", "***001", "900000001"),
        ("can't decode b'\\xff\\xfeab' in crm_email", "b'***'", "xfe"),
        ("value '\\xff\\xfe' here", "'***'", "xff"),
        (
            "run 0f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a days 2026-01-01...2026-01-31 at 10:00:00",
            "run 0f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a days 2026-01-01...2026-01-31 at 10:00:00",
            "***",
        ),
    ],
)
def test_personal_data_is_masked_in_error_text(message, kept, hidden):
    redacted = redact_personal_data(message)
    assert kept in redacted and hidden not in redacted
