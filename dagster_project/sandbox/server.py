"""HTTP front of the sandbox: eSputnik's token route plus ``/_sandbox/*`` inspection routes."""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from dagster_project.sandbox.faults import Faults
from dagster_project.sandbox.state import BadRequest, SandboxState

TOKENS_ROUTE = re.compile(r"^/api/v1/apps/(?P<app>[^/]+)/tokens/?$")


def _is_probe(raw: bytes) -> bool:
    """A body whose ``tokens`` is an empty list."""
    try:
        body = json.loads(raw or b"null")
    except (UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(body, dict) and body.get("tokens") == []


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without this, Nagle's algorithm and the
    # client's delayed ACK add ~40 ms to every keep-alive request.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: object) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def _send(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
        is_text = isinstance(body, str)
        payload = (body if is_text else json.dumps(body)).encode("utf-8")
        self.send_response(status)
        content_type = "text/plain" if is_text else "application/json"
        self.send_header("Content-Type", f"{content_type}; charset=UTF-8")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _authorized(self) -> bool:
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            _, _, password = base64.b64decode(header[6:]).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return password == self.server.state.api_key

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/_sandbox/state":
            self._send(HTTPStatus.OK, self.server.state.snapshot())
        elif self.path.rstrip("/") == "/_sandbox/events":
            self._send(HTTPStatus.OK, {"events": self.server.state.snapshot()["events"]})
        else:
            self._send(HTTPStatus.NOT_FOUND, "Not found")

    def do_POST(self) -> None:
        raw = self._read_body()
        state = self.server.state
        if self.path.rstrip("/") == "/_sandbox/reset":
            state.reset()
            self._send(HTTPStatus.OK, {"reset": True})
            return
        if self.path.rstrip("/") == "/_sandbox/contacts":
            contacts = [state.add_contact(c) for c in json.loads(raw or b"[]")]
            self._send(HTTPStatus.OK, {"contacts": contacts})
            return
        if self.path.rstrip("/") == "/_sandbox/messages":
            try:
                events = state.send_message(**json.loads(raw or b"{}"))
            except TypeError as exc:
                self._send(HTTPStatus.BAD_REQUEST, str(exc))
                return
            self._send(HTTPStatus.OK, {"events": events})
            return
        if self.path.rstrip("/") == "/_sandbox/faults":
            try:
                self.server.faults = Faults.from_json(json.loads(raw or b"{}"))
            except (ValueError, TypeError) as exc:
                self._send(HTTPStatus.BAD_REQUEST, str(exc))
                return
            self._send(HTTPStatus.OK, {"faults": repr(self.server.faults)})
            return
        match = TOKENS_ROUTE.match(self.path)
        if not match:
            self._send(HTTPStatus.NOT_FOUND, "Not found")
            return
        if _is_probe(raw):
            # An empty token list stores nothing (the sync's credential check): answered as
            # eSputnik answers it, counted apart, and left out of the faults and request stats,
            # which are about requests that carry tokens.
            state.probe_seen()
            self._handle_probe(match["app"])
            return
        state.request_started()
        try:
            self._handle_tokens(match["app"], raw)
        finally:
            state.request_finished()

    def _handle_probe(self, app_uuid: str) -> None:
        if not self._authorized():
            self._send(HTTPStatus.UNAUTHORIZED, "Unauthorized: wrong API key")
        elif app_uuid not in self.server.state.app_uuids:
            self._send(HTTPStatus.NOT_FOUND, f"Application {app_uuid} not found")
        else:
            self._send(HTTPStatus.OK, {"tokens": []})

    def _handle_tokens(self, app_uuid: str, raw: bytes) -> None:
        state = self.server.state
        outcome = self.server.faults.next_outcome()  # checked by Faults.from_json
        if outcome == "drop":
            self.close_connection = True
            return
        if outcome.isdigit():
            self._send(int(outcome), "Temporary failure")
            return
        after_store = outcome.removeprefix("store-") if outcome != "ok" else ""
        if self._inject_fault(raw):
            return
        if not self._authorized():
            self._send(HTTPStatus.UNAUTHORIZED, "Unauthorized: wrong API key")
            return
        if app_uuid not in state.app_uuids:
            self._send(HTTPStatus.NOT_FOUND, f"Application {app_uuid} not found")
            return
        try:
            body = json.loads(raw.decode("utf-8"))
            state.store_tokens(app_uuid, body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            self._send(HTTPStatus.BAD_REQUEST, "Request body is not valid UTF-8 JSON")
            return
        except BadRequest as exc:
            self._send(HTTPStatus.BAD_REQUEST, str(exc))
            return
        if after_store == "drop" or self.server.faults.draw(
            self.server.faults.drop_after_store_rate
        ):
            self.close_connection = True
            return
        if after_store:
            self._send(int(after_store), "Internal error after the tokens were stored")
            return
        self._send(HTTPStatus.OK, "")

    def _inject_fault(self, raw: bytes) -> bool:
        """Apply the configured faults; True when the request was answered (or dropped)."""
        faults = self.server.faults
        forced, latency = faults.next_request()
        if latency:
            time.sleep(latency)
        if faults.draw(faults.drop_rate):
            self.close_connection = True
            return True
        if forced:
            headers = {}
            if faults.retry_after is not None:
                headers["Retry-After"] = str(int(faults.retry_after))
            self._send(faults.fail_status, "Too many requests, slow down", headers)
            return True
        if faults.draw(faults.error_rate):
            self._send(faults.pick_error_status(), "Temporary failure")
            return True
        if faults.max_body_bytes is not None and len(raw) > faults.max_body_bytes:
            self._send(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "Request body too large")
            return True
        if faults.reject_tokens:
            try:
                entries = json.loads(raw).get("tokens") or []
            except (ValueError, AttributeError):
                return False
            for index, entry in enumerate(entries):
                if isinstance(entry, dict) and entry.get("token") in faults.reject_tokens:
                    self._send(
                        HTTPStatus.BAD_REQUEST,
                        f"tokens[{index}] (token {entry['token']!r}): token format is invalid",
                    )
                    return True
        return False


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], state: SandboxState, verbose: bool) -> None:
        super().__init__(address, _Handler)
        self.state = state
        self.verbose = verbose
        self.faults = Faults()


class SandboxServer:
    """Runs the sandbox on a background thread; ``base_url`` is what ESPUTNIK_BASE_URL takes."""

    def __init__(
        self,
        api_key: str,
        app_uuids: set[str] | list[str],
        host: str = "127.0.0.1",
        port: int = 0,
        verbose: bool = False,
    ) -> None:
        self.state = SandboxState(api_key=api_key, app_uuids=set(app_uuids))
        self._server = _Server((host, port), self.state, verbose)
        self._thread: threading.Thread | None = None

    def set_faults(self, **switches: object) -> None:
        """Replace the active faults (see ``faults.py``); no arguments clears them."""
        self._server.faults = Faults.from_json(switches)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://{self._server.server_address[0]}:{self.port}/api"

    def start(self) -> SandboxServer:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
