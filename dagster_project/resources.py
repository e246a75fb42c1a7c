"""One ConfigurableResource per outside system, configured from environment variables."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from dagster import ConfigurableResource, EnvVar
from pydantic import Field, PrivateAttr
from sqlalchemy import Engine, create_engine, event

from dagster_project.core.db import load_sql, strip_line_comments
from dagster_project.core.decoding import lenient_text
from dagster_project.core.esputnik import DEFAULT_BASE_URL, EsputnikClient
from dagster_project.core.push_types import PushOptions
from dagster_project.env import EnvResource, PositiveFloat, SettingError, env_field, from_env
from dagster_project.settings import SyncSettings

DEFAULT_CHUNK_SIZE = 500
MAX_CHUNK_SIZE = 10_000


def demo_warehouse_url() -> str:
    """The embedded SQLite demo warehouse, beside the current directory's ``.demo/``."""
    return f"sqlite:///{Path.cwd() / '.demo' / 'warehouse.sqlite'}"


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """WAL: one fsync per ledger commit instead of several, and readers never block the push;
    a long busy timeout lets a concurrent run wait for a write instead of failing. Reading
    through a memory map (capped, so the run's resident memory stays bounded) and a larger page
    cache make the million-row extract join about 1.5x faster than 4 KiB reads one at a time."""
    # A byte that is not UTF-8 in one CRM field must not stop the run: it reads as U+FFFD, which
    # the identifier rules refuse with a reason (core/decoding.py, decode_text).
    dbapi_connection.text_factory = lenient_text
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=60000")
    cursor.execute(f"PRAGMA mmap_size={256 * 2**20}")
    cursor.execute(f"PRAGMA cache_size={-64 * 2**10}")  # negative: KiB
    cursor.close()


class WarehouseResource(EnvResource):
    """The CRM warehouse the subscribers are read from, and the database holding sync state.

    ``url`` and ``state_url`` are SQLAlchemy URLs (``WAREHOUSE_URL``, ``SYNC_STATE_URL``). The
    ledger, staging and rejects live in the state database, which is the warehouse by default.
    """

    url: str = env_field("WAREHOUSE_URL", default_factory=demo_warehouse_url)
    state_url: str | None = env_field("SYNC_STATE_URL", None, "default: url")
    extract_sql_path: str | None = env_field(
        "WAREHOUSE_EXTRACT_SQL", None, "your own extract query file"
    )
    extract_chunk_rows: int = Field(default=100_000, gt=0)

    _engines: dict[str, Engine] = PrivateAttr(default_factory=dict)

    def _engine(self, url: str, setting: str) -> Engine:
        if url not in self._engines:
            try:
                # hide_parameters: a failed statement's message never carries row values
                # (emails, phones) into logs, Failure messages or the alert.
                engine = create_engine(url, pool_pre_ping=True, hide_parameters=True)
            except Exception as exc:
                raise SettingError(f"{setting} is not a usable SQLAlchemy URL: {exc}") from None
            if engine.dialect.name == "sqlite":
                event.listen(engine, "connect", _sqlite_pragmas)
            self._engines[url] = engine
        return self._engines[url]

    def warehouse_engine(self) -> Engine:
        return self._engine(self.url, "WAREHOUSE_URL")

    def state_engine(self) -> Engine:
        if self.state_url:
            return self._engine(self.state_url, "SYNC_STATE_URL")
        return self.warehouse_engine()

    def extract_query(self) -> str:
        if not self.extract_sql_path:
            return load_sql("extract_subscribers.sql")
        path = Path(self.extract_sql_path)
        if not path.is_file():
            raise SettingError(f"WAREHOUSE_EXTRACT_SQL={path} is not a readable file")
        return strip_line_comments(path.read_text(encoding="utf-8"))

    def describe(self, engine: Engine) -> str:
        """The engine's URL with any password hidden, for messages."""
        return engine.url.render_as_string(hide_password=True)

    def teardown_after_execution(self, context) -> None:
        for engine in self._engines.values():
            engine.dispose()


class EsputnikResource(EnvResource):
    """eSputnik's token API for one mobile/bot app.

    ``api_key`` is the secret (``ESPUTNIK_API_KEY``), sent as the Basic-auth password only.
    """

    api_key: str = env_field("ESPUTNIK_API_KEY", description="secret", repr=False)
    app_uuid: str = env_field("ESPUTNIK_APP_UUID")
    base_url: str = env_field("ESPUTNIK_BASE_URL", DEFAULT_BASE_URL)
    chunk_size: int = env_field("ESPUTNIK_CHUNK_SIZE", DEFAULT_CHUNK_SIZE)
    connect_timeout_seconds: float = 5.0
    read_timeout_seconds: PositiveFloat = env_field(
        "ESPUTNIK_READ_TIMEOUT_SECONDS", 60.0, "wait for an answer; past it the chunk is in doubt"
    )
    max_retries: int = env_field("ESPUTNIK_MAX_RETRIES", 5, "per request")
    backoff_seconds: float = env_field("ESPUTNIK_BACKOFF_SECONDS", 1.0)
    backoff_max_seconds: float = env_field("ESPUTNIK_BACKOFF_MAX_SECONDS", 60.0)
    max_in_flight: int = env_field("ESPUTNIK_MAX_IN_FLIGHT", 1, "requests at once")
    requests_per_second: float = env_field(
        "ESPUTNIK_REQUESTS_PER_SECOND", 0.0, "0: no client-side limit"
    )

    def __init__(self, **values: Any) -> None:
        """``app_uuid`` is trimmed once, here: a secret mounted from a file often ends in a
        newline, and the ledger, the events and the API must all see the same app. An
        ``EnvVar`` (the variable's name) is left as it is; Dagster builds the resource again
        with the variable's value when it runs."""
        app_uuid = values.get("app_uuid")
        if isinstance(app_uuid, str) and not isinstance(app_uuid, EnvVar):
            values["app_uuid"] = app_uuid.strip()
        super().__init__(**values)

    def check_settings(self) -> None:
        """Refuse settings that cannot work, naming the variable, before anything runs."""
        if not self.api_key or not self.api_key.strip():
            raise SettingError("ESPUTNIK_API_KEY is empty")
        try:
            uuid.UUID(self.app_uuid)
        except ValueError:
            raise SettingError(f"ESPUTNIK_APP_UUID={self.app_uuid!r} is not a UUID") from None
        if not self.base_url.startswith(("http://", "https://")):
            raise SettingError(
                f"ESPUTNIK_BASE_URL={self.base_url!r} must start with http:// or https://"
            )
        if not 1 <= self.chunk_size <= MAX_CHUNK_SIZE:
            raise SettingError(
                f"ESPUTNIK_CHUNK_SIZE={self.chunk_size} must be between 1 and {MAX_CHUNK_SIZE}"
            )
        if self.max_retries < 0:
            raise SettingError(f"ESPUTNIK_MAX_RETRIES={self.max_retries} must be 0 or more")
        if not 1 <= self.max_in_flight <= 32:
            raise SettingError(f"ESPUTNIK_MAX_IN_FLIGHT={self.max_in_flight} must be 1 to 32")
        if self.requests_per_second < 0:
            raise SettingError(
                f"ESPUTNIK_REQUESTS_PER_SECOND={self.requests_per_second} must be 0 or more"
            )

    def client(self) -> EsputnikClient:
        return EsputnikClient(
            base_url=self.base_url.rstrip("/"),
            app_uuid=self.app_uuid,
            api_key=self.api_key,
            connect_timeout=self.connect_timeout_seconds,
            read_timeout=self.read_timeout_seconds,
            max_retries=self.max_retries,
            backoff_factor=self.backoff_seconds,
            backoff_max=self.backoff_max_seconds,
            pool_size=self.max_in_flight,
        )

    def push_options(self, settings: SyncSettings) -> PushOptions:
        """The one place a push's options are read from configuration."""
        return settings.push_options(
            chunk_size=self.chunk_size,
            max_in_flight=self.max_in_flight,
            requests_per_second=self.requests_per_second,
        )

    def __repr__(self) -> str:
        return (
            f"EsputnikResource(base_url={self.base_url!r}, app_uuid={self.app_uuid!r}, api_key=***)"
        )

    __str__ = __repr__


class AlertWebhookResource(EnvResource):
    """Where alerts go: an incoming-webhook URL (Slack-compatible JSON)."""

    url: str | None = env_field("SYNC_ALERT_WEBHOOK_URL", None, description="incoming webhook")
    timeout_seconds: float = 10.0

    def send(self, text: str) -> bool:
        """Post the alert; a failure names the webhook's host only (its path is the secret)."""
        if not self.url:
            return False
        try:
            response = requests.post(self.url, json={"text": text}, timeout=self.timeout_seconds)
            response.raise_for_status()
        except requests.RequestException as exc:
            status = getattr(exc.response, "status_code", None)
            cause = f"HTTP {status}" if status else type(exc).__name__
            raise AlertDeliveryError(
                f"posting the alert to SYNC_ALERT_WEBHOOK_URL ({masked_url(self.url)}) failed: "
                f"{cause}"
            ) from None
        return True


class AlertDeliveryError(RuntimeError):
    """The webhook did not take the alert; the message holds no part of the secret URL."""


def masked_url(url: str) -> str:
    """Scheme and host of a URL, the rest hidden: a webhook URL's path and query are its key."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}/***"


def resources_from_env() -> dict[str, ConfigurableResource]:
    """The resources of the code location, each field fed by its environment variable."""
    return {
        "warehouse": from_env(WarehouseResource),
        "esputnik": from_env(EsputnikResource),
        "sync_settings": from_env(SyncSettings),
        "alerts": from_env(AlertWebhookResource),
    }
