"""One ConfigurableResource per outside system, configured from environment variables."""

from __future__ import annotations

import os
import typing
import uuid
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import phonenumbers
import requests
from dagster import ConfigurableResource, EnvVar, InitResourceContext
from pydantic import Field, PrivateAttr
from sqlalchemy import Engine, create_engine, event

from dagster_project.core.db import load_sql, strip_line_comments
from dagster_project.core.esputnik import DEFAULT_BASE_URL, EsputnikClient

R = TypeVar("R", bound=ConfigurableResource)

DEFAULT_CHUNK_SIZE = 500
MAX_CHUNK_SIZE = 10_000


class SettingError(ValueError):
    """A configuration value that cannot work; the message names the variable."""


def demo_warehouse_url() -> str:
    """The embedded SQLite demo warehouse, beside the current directory's ``.demo/``."""
    return f"sqlite:///{Path.cwd() / '.demo' / 'warehouse.sqlite'}"


def env_field(env: str, *default: object, description: str = "", **rules: Any) -> Any:
    """A field fed by the environment variable ``env`` (read by ``from_env``); the variable's
    name leads its description, which the Dagster UI shows. No default: required."""
    text = f"{env}: {description}" if description else env
    return Field(*default, description=text, json_schema_extra={"env": env}, **rules)


def from_env(resource: type[R]) -> R:
    """``resource`` with every ``env_field`` whose variable is set taken from the environment.

    Text and integers are passed as ``EnvVar`` (the UI shows the variable, not the value; a
    required one that is unset fails the run at its start, naming it); numbers and switches are
    parsed here, with an error naming the variable. A variable set to an empty string counts as
    unset, except for an optional setting with a default, where it means "none".
    """
    values: dict[str, object] = {}
    for name, field in resource.model_fields.items():
        extra = field.json_schema_extra
        env = extra.get("env") if isinstance(extra, dict) else None
        if env is None:
            continue
        raw = os.environ.get(env)
        if raw is None or not raw.strip():
            if field.is_required():
                values[name] = EnvVar(env)
            elif raw is not None and field.default is not None and _optional(field.annotation):
                values[name] = None
            continue
        values[name] = _parse_setting(env, raw, _setting_kind(field.annotation))
    return resource(**values)


def _optional(annotation: object) -> bool:
    return type(None) in typing.get_args(annotation)


def _setting_kind(annotation: object) -> type:
    kinds = [a for a in typing.get_args(annotation) or (annotation,) if a is not type(None)]
    return kinds[0]


def _parse_setting(env: str, raw: str, kind: type) -> object:
    if kind is str:
        return EnvVar(env)
    if kind is int:
        return EnvVar.int(env)
    if kind is float:
        try:
            return float(raw)
        except ValueError:
            raise SettingError(f"{env}={raw!r} is not a number") from None
    if kind is bool:
        value = raw.strip().lower()
        if value in ("1", "true", "yes", "on"):
            return True
        if value in ("0", "false", "no", "off"):
            return False
        raise SettingError(f"{env}={raw!r} must be true or false")
    raise TypeError(f"{env}: no reader for settings of type {kind}")


def _lenient_text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """WAL: one fsync per ledger commit instead of several, and readers never block the push;
    a long busy timeout lets a concurrent run wait for a write instead of failing. Reading
    through a memory map (capped, so the run's resident memory stays bounded) and a larger page
    cache make the million-row extract join about 1.5x faster than 4 KiB reads one at a time."""
    # A byte that is not UTF-8 in one CRM field must not stop the run: it reads as U+FFFD, which
    # the identifier rules refuse with a reason (core/identifiers.py, decode_text).
    dbapi_connection.text_factory = _lenient_text
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=60000")
    cursor.execute(f"PRAGMA mmap_size={256 * 2**20}")
    cursor.execute(f"PRAGMA cache_size={-64 * 2**10}")  # negative: KiB
    cursor.close()


class WarehouseResource(ConfigurableResource):
    """The CRM warehouse the subscribers are read from, and the database holding sync state.

    ``url`` and ``state_url`` are SQLAlchemy URLs (``WAREHOUSE_URL``, ``SYNC_STATE_URL``). The
    ledger, staging and rejects live in the state database, which is the warehouse by default.
    """

    url: str = env_field("WAREHOUSE_URL", default_factory=demo_warehouse_url)
    state_url: str | None = env_field("SYNC_STATE_URL", None, description="default: url")
    extract_sql_path: str | None = env_field(
        "WAREHOUSE_EXTRACT_SQL", None, description="your own extract query file"
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


class EsputnikResource(ConfigurableResource):
    """eSputnik's token API for one mobile/bot app.

    ``api_key`` is the secret (``ESPUTNIK_API_KEY``), sent as the Basic-auth password only.
    """

    api_key: str = env_field("ESPUTNIK_API_KEY", description="secret", repr=False)
    app_uuid: str = env_field("ESPUTNIK_APP_UUID")
    base_url: str = env_field("ESPUTNIK_BASE_URL", DEFAULT_BASE_URL)
    chunk_size: int = env_field("ESPUTNIK_CHUNK_SIZE", DEFAULT_CHUNK_SIZE)
    connect_timeout_seconds: float = 5.0
    read_timeout_seconds: float = env_field(
        "ESPUTNIK_READ_TIMEOUT_SECONDS",
        60.0,
        description="wait for an answer; past it the chunk may be stored and is sent once more",
        gt=0,
    )
    max_retries: int = env_field("ESPUTNIK_MAX_RETRIES", 5, description="per request")
    backoff_seconds: float = env_field("ESPUTNIK_BACKOFF_SECONDS", 1.0)
    backoff_max_seconds: float = env_field("ESPUTNIK_BACKOFF_MAX_SECONDS", 60.0)
    max_in_flight: int = env_field("ESPUTNIK_MAX_IN_FLIGHT", 1, description="requests at once")
    requests_per_second: float = env_field(
        "ESPUTNIK_REQUESTS_PER_SECOND", 0.0, description="0: no client-side limit"
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

    def setup_for_execution(self, context: InitResourceContext) -> None:
        self.check_settings()

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

    def __repr__(self) -> str:
        return (
            f"EsputnikResource(base_url={self.base_url!r}, app_uuid={self.app_uuid!r}, api_key=***)"
        )

    __str__ = __repr__


class SyncSettings(ConfigurableResource):
    """Rules of the sync that are not about one outside system."""

    phone_default_region: str | None = env_field(
        "PHONE_DEFAULT_REGION",
        "UA",
        description="region of numbers without a country code; empty: refuse such numbers",
    )
    staging_retention_days: int = Field(default=7, gt=0)
    validate_chunk_rows: int = env_field(
        "SYNC_VALIDATE_CHUNK_ROWS",
        200_000,
        description="rows validated at once; bounds the run's memory",
        gt=0,
    )
    dry_run: bool = env_field(
        "SYNC_DRY_RUN", False, description="report what would be sent; send nothing"
    )
    push_lock_wait_seconds: float = env_field(
        "SYNC_PUSH_LOCK_WAIT_SECONDS", 3600.0, description="for a concurrent run's push"
    )
    max_no_identifier_share: float = env_field(
        "SYNC_MAX_NO_IDENTIFIER_SHARE", 0.25, description="before the push is blocked"
    )
    mass_change_multiple: float = env_field(
        "SYNC_MASS_CHANGE_MULTIPLE", 10.0, description="of the recent average new tokens"
    )
    mass_change_min_tokens: int = env_field(
        "SYNC_MASS_CHANGE_MIN_TOKENS", 1000, description="never blocked below this"
    )
    mass_change_lookback_runs: int = Field(default=14, gt=0)
    allow_mass_change: bool = env_field(
        "SYNC_ALLOW_MASS_CHANGE", False, description="let a deliberate flood through"
    )
    max_refused_share: float = env_field(
        "SYNC_MAX_REFUSED_SHARE",
        0.5,
        description="of the tokens sent in a run refused by eSputnik, before the push stops",
        ge=0,
        le=1,
    )
    refused_min_tokens: int = env_field(
        "SYNC_REFUSED_MIN_TOKENS",
        100,
        description="tokens sent before SYNC_MAX_REFUSED_SHARE applies",
        gt=0,
    )
    journal_dir: str | None = env_field(
        "SYNC_JOURNAL_DIR",
        None,
        description=(
            "for chunks eSputnik accepted that the ledger could not take; default: beside a "
            "SQLite state database, else ./.demo"
        ),
    )
    max_quarantined_tokens: int = env_field(
        "SYNC_MAX_QUARANTINED_TOKENS", 50, description="in one run before the check fails"
    )
    change_overlap_hours: float = env_field(
        "SYNC_CHANGE_OVERLAP_HOURS",
        48.0,
        description="separate state database: how far before the last run a change run reads",
        gt=0,
    )
    full_scan_every_days: float = env_field(
        "SYNC_FULL_SCAN_EVERY_DAYS",
        7.0,
        description="separate state database: a run reads every subscriber this often",
        gt=0,
    )
    events_grace_hours: float = env_field(
        "SYNC_EVENTS_GRACE_HOURS", 48.0, description="how far behind the cursor to re-read"
    )
    events_future_tolerance_minutes: float = env_field(
        "SYNC_EVENTS_FUTURE_TOLERANCE_MINUTES",
        10.0,
        description="events dated further past now are refused (clock skew allowance)",
        ge=0,
    )
    events_chunk_rows: int = env_field(
        "SYNC_EVENTS_CHUNK_ROWS", 50_000, description="message events read at once", gt=0
    )
    events_retention_days: int = env_field(
        "SYNC_EVENTS_RETENTION_DAYS",
        90,
        description="processed and refused message events kept",
        gt=0,
    )
    rejects_retention_days: int = env_field(
        "SYNC_REJECTS_RETENTION_DAYS", 90, description="rows of esputnik_sync_rejects kept", gt=0
    )
    quarantine_retention_days: int = env_field(
        "SYNC_QUARANTINE_RETENTION_DAYS",
        90,
        description="a quarantined token is retried once its entry is this old",
        gt=0,
    )
    delivery_metrics_days: int = Field(default=35, gt=0)
    blocked_rate_jump_multiple: float = env_field(
        "SYNC_BLOCKED_RATE_JUMP_MULTIPLE", 3.0, description="of the 7-day average"
    )
    blocked_rate_floor: float = Field(
        default=0.02, description="blocked rates under this never count as a jump"
    )

    def setup_for_execution(self, context: InitResourceContext) -> None:
        self.default_region()
        if not 0 <= self.max_no_identifier_share <= 1:
            raise SettingError(
                f"SYNC_MAX_NO_IDENTIFIER_SHARE={self.max_no_identifier_share} must be 0 to 1"
            )
        if self.mass_change_multiple <= 0:
            raise SettingError(f"SYNC_MASS_CHANGE_MULTIPLE={self.mass_change_multiple} must be > 0")
        if self.events_retention_days < self.delivery_metrics_days or (
            self.events_retention_days * 24 <= self.events_grace_hours
        ):
            raise SettingError(
                f"SYNC_EVENTS_RETENTION_DAYS={self.events_retention_days} must cover the "
                f"{self.delivery_metrics_days} days of delivery metrics and "
                f"SYNC_EVENTS_GRACE_HOURS={self.events_grace_hours:g}"
            )

    def default_region(self) -> str | None:
        """The ISO region for phone numbers without a country code, or None to refuse them."""
        if not self.phone_default_region:
            return None
        region = self.phone_default_region.strip().upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise SettingError(
                f"PHONE_DEFAULT_REGION={self.phone_default_region!r} is not an ISO 3166 region code"
            )
        return region


class AlertWebhookResource(ConfigurableResource):
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
