"""One ConfigurableResource per outside system, configured from environment variables."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import phonenumbers
from dagster import ConfigurableResource, EnvVar, InitResourceContext
from pydantic import Field, PrivateAttr
from sqlalchemy import Engine, create_engine, event

from dagster_project.core.esputnik import DEFAULT_BASE_URL, EsputnikClient
from dagster_project.core.state import load_sql, strip_line_comments

DEFAULT_CHUNK_SIZE = 500
MAX_CHUNK_SIZE = 10_000


class SettingError(ValueError):
    """A configuration value that cannot work; the message names the variable."""


def demo_warehouse_url() -> str:
    """The embedded SQLite demo warehouse, beside the current directory's ``.demo/``."""
    return f"sqlite:///{Path.cwd() / '.demo' / 'warehouse.sqlite'}"


def env_or_default(name: str, default: object) -> object:
    """An EnvVar when the variable is set (so the UI shows its name), else the default."""
    return EnvVar(name) if os.environ.get(name) else default


def env_int_or_default(name: str, default: int) -> object:
    return EnvVar.int(name) if os.environ.get(name) else default


def env_float_or_default(name: str, default: float) -> float:
    """Dagster's EnvVar has no float form: parsed here, with an error naming the variable."""
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise SettingError(f"{name}={raw!r} is not a number") from None


def env_bool_or_default(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SettingError(f"{name}={raw!r} must be true or false")


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """WAL: one fsync per ledger commit instead of several, and readers never block the push;
    a long busy timeout lets a concurrent run wait for a write instead of failing. Reading
    through a memory map (capped, so the run's resident memory stays bounded) and a larger page
    cache make the million-row extract join about 1.5x faster than 4 KiB reads one at a time."""
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

    url: str = Field(default_factory=demo_warehouse_url, description="WAREHOUSE_URL")
    state_url: str | None = Field(default=None, description="SYNC_STATE_URL (default: url)")
    extract_sql_path: str | None = Field(
        default=None, description="WAREHOUSE_EXTRACT_SQL: your own extract query file"
    )
    extract_chunk_rows: int = Field(default=100_000, gt=0)

    _engines: dict[str, Engine] = PrivateAttr(default_factory=dict)

    def _engine(self, url: str, setting: str) -> Engine:
        if url not in self._engines:
            try:
                engine = create_engine(url, pool_pre_ping=True)
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

    api_key: str = Field(description="ESPUTNIK_API_KEY (secret)", repr=False)
    app_uuid: str = Field(description="ESPUTNIK_APP_UUID")
    base_url: str = Field(default=DEFAULT_BASE_URL, description="ESPUTNIK_BASE_URL")
    chunk_size: int = Field(default=DEFAULT_CHUNK_SIZE, description="ESPUTNIK_CHUNK_SIZE")
    connect_timeout_seconds: float = 5.0
    read_timeout_seconds: float = 60.0
    max_retries: int = Field(default=5, description="ESPUTNIK_MAX_RETRIES per request")
    backoff_seconds: float = Field(default=1.0, description="ESPUTNIK_BACKOFF_SECONDS")
    backoff_max_seconds: float = Field(default=60.0, description="ESPUTNIK_BACKOFF_MAX_SECONDS")
    max_in_flight: int = Field(default=1, description="ESPUTNIK_MAX_IN_FLIGHT requests at once")
    requests_per_second: float = Field(
        default=0.0, description="ESPUTNIK_REQUESTS_PER_SECOND (0: no client-side limit)"
    )

    def setup_for_execution(self, context: InitResourceContext) -> None:
        self.check_settings()

    def check_settings(self) -> None:
        """Refuse settings that cannot work, naming the variable, before anything runs."""
        if not self.api_key or not self.api_key.strip():
            raise SettingError("ESPUTNIK_API_KEY is empty")
        try:
            uuid.UUID(self.app_uuid.strip())
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
            app_uuid=self.app_uuid.strip(),
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

    phone_default_region: str | None = Field(
        default="UA", description="PHONE_DEFAULT_REGION for numbers without a country code"
    )
    staging_retention_days: int = Field(default=7, gt=0)
    validate_chunk_rows: int = Field(
        default=200_000,
        gt=0,
        description="SYNC_VALIDATE_CHUNK_ROWS: rows validated at once; bounds the run's memory",
    )
    dry_run: bool = Field(
        default=False, description="SYNC_DRY_RUN: report what would be sent; send nothing"
    )
    push_lock_wait_seconds: float = Field(
        default=3600.0, description="SYNC_PUSH_LOCK_WAIT_SECONDS for a concurrent run's push"
    )
    max_no_identifier_share: float = Field(
        default=0.25, description="SYNC_MAX_NO_IDENTIFIER_SHARE before the push is blocked"
    )
    mass_change_multiple: float = Field(
        default=10.0, description="SYNC_MASS_CHANGE_MULTIPLE of the recent average new tokens"
    )
    mass_change_min_tokens: int = Field(
        default=1000, description="SYNC_MASS_CHANGE_MIN_TOKENS never blocked below this"
    )
    mass_change_lookback_runs: int = Field(default=14, gt=0)
    allow_mass_change: bool = Field(
        default=False, description="SYNC_ALLOW_MASS_CHANGE: let a deliberate flood through"
    )
    max_quarantined_tokens: int = Field(
        default=50, description="SYNC_MAX_QUARANTINED_TOKENS in one run before the check fails"
    )
    events_grace_hours: float = Field(
        default=48.0, description="SYNC_EVENTS_GRACE_HOURS: how far behind the cursor to re-read"
    )
    delivery_metrics_days: int = Field(default=35, gt=0)
    blocked_rate_jump_multiple: float = Field(
        default=3.0, description="SYNC_BLOCKED_RATE_JUMP_MULTIPLE of the 7-day average"
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


def resources_from_env() -> dict[str, ConfigurableResource]:
    """The resources of the code location, each field fed by its environment variable."""
    return {
        "warehouse": WarehouseResource(
            url=env_or_default("WAREHOUSE_URL", demo_warehouse_url()),
            state_url=env_or_default("SYNC_STATE_URL", None),
            extract_sql_path=env_or_default("WAREHOUSE_EXTRACT_SQL", None),
        ),
        "esputnik": EsputnikResource(
            api_key=EnvVar("ESPUTNIK_API_KEY"),
            app_uuid=EnvVar("ESPUTNIK_APP_UUID"),
            base_url=env_or_default("ESPUTNIK_BASE_URL", DEFAULT_BASE_URL),
            chunk_size=env_int_or_default("ESPUTNIK_CHUNK_SIZE", DEFAULT_CHUNK_SIZE),
            max_retries=env_int_or_default("ESPUTNIK_MAX_RETRIES", 5),
            backoff_seconds=env_float_or_default("ESPUTNIK_BACKOFF_SECONDS", 1.0),
            backoff_max_seconds=env_float_or_default("ESPUTNIK_BACKOFF_MAX_SECONDS", 60.0),
            max_in_flight=env_int_or_default("ESPUTNIK_MAX_IN_FLIGHT", 1),
            requests_per_second=env_float_or_default("ESPUTNIK_REQUESTS_PER_SECOND", 0.0),
        ),
        "sync_settings": SyncSettings(
            phone_default_region=env_or_default("PHONE_DEFAULT_REGION", "UA"),
            dry_run=env_bool_or_default("SYNC_DRY_RUN", False),
            push_lock_wait_seconds=env_float_or_default("SYNC_PUSH_LOCK_WAIT_SECONDS", 3600.0),
            max_no_identifier_share=env_float_or_default("SYNC_MAX_NO_IDENTIFIER_SHARE", 0.25),
            mass_change_multiple=env_float_or_default("SYNC_MASS_CHANGE_MULTIPLE", 10.0),
            mass_change_min_tokens=env_int_or_default("SYNC_MASS_CHANGE_MIN_TOKENS", 1000),
            allow_mass_change=env_bool_or_default("SYNC_ALLOW_MASS_CHANGE", False),
            max_quarantined_tokens=env_int_or_default("SYNC_MAX_QUARANTINED_TOKENS", 50),
            events_grace_hours=env_float_or_default("SYNC_EVENTS_GRACE_HOURS", 48.0),
            blocked_rate_jump_multiple=env_float_or_default("SYNC_BLOCKED_RATE_JUMP_MULTIPLE", 3.0),
            validate_chunk_rows=env_int_or_default("SYNC_VALIDATE_CHUNK_ROWS", 200_000),
        ),
    }
