"""HTTP client for eSputnik's `POST /v1/apps/{app_uuid}/tokens`.

Transient failures (429 honouring Retry-After, 5xx, resets, timeouts) are retried by urllib3's
``Retry`` with exponential backoff and jitter, at most ``max_retries`` times a request and never
waiting longer than ``backoff_max`` at once; account errors (401/403/404) stop at once, since
retrying a wrong key or app uuid only hammers the API.

Retrying a POST is safe except after a read timeout or a dropped response: eSputnik may have
stored the chunk already, and a token sent again is stored again. That one chunk is the only
duplicate the sync can cause; waiting for it instead would lose the whole run. The API key travels only in the Authorization header and is
never part of a message, exception or repr.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

DEFAULT_BASE_URL = "https://esputnik.com/api"
RETRY_STATUSES = (429, 500, 502, 503, 504)
PAYLOAD_KEYS = {
    "contact_id": "contactId",
    "external_customer_id": "externalCustomerId",
    "phone": "phone",
    "email": "email",
}


class EsputnikError(Exception):
    """Base of every failure the client reports."""


class EsputnikSettingsError(EsputnikError):
    """401, 403 or 404: the key, app uuid or base URL is wrong; retrying cannot help."""


class EsputnikRejectedError(EsputnikError):
    """400: eSputnik refused the request body; ``reason`` is its text."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class EsputnikUnavailableError(EsputnikError):
    """Retries spent on 429/5xx or network failures; the chunk may be sent again later."""


class EsputnikTooLargeError(EsputnikError):
    """413: the body is over eSputnik's size limit; a smaller chunk may pass."""


class _BoundedRetry(Retry):
    """urllib3's Retry with ``Retry-After`` capped, so one answer cannot stall a run for hours."""

    retry_after_max: float = 60.0

    def parse_retry_after(self, retry_after: str) -> float:
        return min(super().parse_retry_after(retry_after), self.retry_after_max)

    def new(self, **kw):  # keep the cap on the copies urllib3 makes per attempt
        retry = super().new(**kw)
        retry.retry_after_max = self.retry_after_max
        return retry


def token_payload(row: Mapping[str, object]) -> dict[str, object]:
    """One ``tokens[]`` entry: the token plus every identifier present, in eSputnik's names."""
    entry: dict[str, object] = {"token": row["token"]}
    for column, key in PAYLOAD_KEYS.items():
        value = row.get(column)
        if value is not None and value == value:  # skip None and NaN
            entry[key] = int(value) if column == "contact_id" else value
    return entry


@dataclass
class EsputnikClient:
    """A pooled session bound to one app; safe to reuse for every chunk of a run."""

    base_url: str
    app_uuid: str
    api_key: str = field(repr=False)
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    max_retries: int = 5
    backoff_factor: float = 1.0
    backoff_max: float = 60.0
    user_name: str = "esputnik-telegram-sync"
    pool_size: int = 1

    def __post_init__(self) -> None:
        self.url = f"{self.base_url.rstrip('/')}/v1/apps/{self.app_uuid}/tokens"
        retry = _BoundedRetry(
            total=self.max_retries,
            connect=self.max_retries,
            read=self.max_retries,
            status=self.max_retries,
            other=0,
            allowed_methods=None,  # POST too: a chunk is only recorded once accepted
            status_forcelist=RETRY_STATUSES,
            backoff_factor=self.backoff_factor,
            backoff_max=self.backoff_max,
            backoff_jitter=self.backoff_factor / 2,
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        retry.retry_after_max = self.backoff_max
        self.session = requests.Session()
        adapter = HTTPAdapter(max_retries=retry, pool_connections=1, pool_maxsize=self.pool_size)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.auth = (self.user_name, self.api_key)
        self.session.headers["Content-Type"] = "application/json; charset=UTF-8"

    def post_tokens(self, tokens: Sequence[Mapping[str, object]]) -> int:
        """Send one chunk; return the HTTP status on success, raise a typed error otherwise."""
        body = json.dumps({"tokens": list(tokens)}, ensure_ascii=False, separators=(",", ":"))
        try:
            response = self.session.post(
                self.url,
                data=body.encode("utf-8"),
                timeout=(self.connect_timeout, self.read_timeout),
            )
        except requests.exceptions.RetryError as exc:
            raise EsputnikUnavailableError(
                f"eSputnik at {self.url} kept answering 429/5xx after {self.max_retries} retries"
            ) from exc
        except requests.exceptions.RequestException as exc:
            raise EsputnikUnavailableError(
                f"eSputnik at {self.url} unreachable after {self.max_retries} retries: "
                f"{type(exc).__name__}"
            ) from exc
        return self._check(response)

    def _check(self, response: requests.Response) -> int:
        status = response.status_code
        if 200 <= status < 300:
            return status
        reason = response.text.strip()[:500] or response.reason or ""
        if status in (401, 403):
            raise EsputnikSettingsError(
                f"eSputnik refused the credentials ({status} {reason!r}) at {self.url}: "
                "check ESPUTNIK_API_KEY and that the key's account owns ESPUTNIK_APP_UUID"
            )
        if status == 404:
            raise EsputnikSettingsError(
                f"eSputnik answered 404 ({reason!r}) for {self.url}: check ESPUTNIK_APP_UUID "
                "and ESPUTNIK_BASE_URL"
            )
        if status == 400:
            raise EsputnikRejectedError(f"eSputnik rejected the chunk (400): {reason}", reason)
        if status == 413:
            raise EsputnikTooLargeError(f"eSputnik refused the body as too large (413): {reason}")
        raise EsputnikUnavailableError(f"eSputnik answered {status} at {self.url}: {reason}")

    def close(self) -> None:
        self.session.close()
