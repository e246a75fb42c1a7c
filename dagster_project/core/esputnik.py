"""HTTP client for eSputnik's `POST /v1/apps/{app_uuid}/tokens`.

eSputnik stores every token it is sent, so a retry is only free where eSputnik certainly stored
nothing: connection errors (the request never left), 429 and 503 (refused before any work,
``Retry-After`` honoured). urllib3's ``Retry`` retries those, with exponential backoff and
jitter, at most ``max_retries`` times a request. Every other failed outcome may have stored the
chunk (a read timeout, a connection dropped after the request went out, 500/502/504): the client
reports it as ``EsputnikAmbiguousError`` and leaves the decision to resend to the push, which
keeps count per token. Account errors (401/403/404) stop at once, since retrying a wrong key or
app uuid only hammers the API.

The API key travels only in the Authorization header, and a ``user:pass@`` part of the base URL
is masked, so neither is ever part of a message, exception or repr.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError
from urllib3.util.retry import Retry

DEFAULT_BASE_URL = "https://esputnik.com/api"
# Answers that say eSputnik did no work: retried by urllib3 without limit on the copies made.
RETRY_STATUSES = (429, 503)
ACCOUNT_STATUSES = (401, 403, 404)
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
    """Retries spent on 429/503 or connection errors: eSputnik stored none of the chunk."""


class EsputnikAmbiguousError(EsputnikError):
    """No usable answer after the request went out: eSputnik may have stored the chunk."""


class EsputnikTooLargeError(EsputnikError):
    """413: the body is over eSputnik's size limit; a smaller chunk may pass."""


def mask_url(url: str) -> str:
    """``url`` with any ``user:pass@`` replaced by ``***@``, for messages."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]))


def _never_arrived(exc: requests.RequestException) -> bool:
    """True when the request certainly did not reach eSputnik: urllib3 gave up on connecting
    (read errors are re-raised as they happen, never wrapped in ``MaxRetryError``)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout | requests.exceptions.InvalidURL):
        return True
    cause = exc.args[0] if exc.args else None
    return isinstance(cause, MaxRetryError)


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
        self.shown_url = mask_url(self.url)
        retry = Retry(
            total=self.max_retries,
            connect=self.max_retries,
            read=False,  # the request went out: eSputnik may have stored it (the push decides)
            status=self.max_retries,
            other=0,
            allowed_methods=None,  # POST too, for the statuses below: they store nothing
            status_forcelist=RETRY_STATUSES,
            backoff_factor=self.backoff_factor,
            backoff_max=self.backoff_max,
            backoff_jitter=self.backoff_factor / 2,
            respect_retry_after_header=True,
            retry_after_max=max(1, round(self.backoff_max)),  # one answer cannot stall a run
            raise_on_status=False,
        )
        self.session = requests.Session()
        adapter = HTTPAdapter(max_retries=retry, pool_connections=1, pool_maxsize=self.pool_size)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.auth = (self.user_name, self.api_key)
        self.session.headers["Content-Type"] = "application/json; charset=UTF-8"

    def post_tokens(self, tokens: Sequence[Mapping[str, object]]) -> int:
        """Send one chunk; return the HTTP status on success, raise a typed error otherwise."""
        return self._check(self._post(list(tokens)))

    def check_access(self) -> int:
        """Prove the key and app uuid before any work, with a body that cannot store anything
        (an empty ``tokens`` list): 401/403/404 raise ``EsputnikSettingsError`` naming the
        setting; any other answer means the account and app are there. Returns the status."""
        response = self._post([])
        if response.status_code in ACCOUNT_STATUSES:
            self._check(response)
        return response.status_code

    def _post(self, tokens: list[Mapping[str, object]]) -> requests.Response:
        body = json.dumps({"tokens": tokens}, ensure_ascii=False, separators=(",", ":"))
        try:
            return self.session.post(
                self.url,
                data=body.encode("utf-8"),
                timeout=(self.connect_timeout, self.read_timeout),
            )
        except requests.exceptions.RequestException as exc:
            if _never_arrived(exc):
                raise EsputnikUnavailableError(
                    f"eSputnik at {self.shown_url} unreachable after {self.max_retries} "
                    f"retries: {type(exc).__name__}"
                ) from None
            raise EsputnikAmbiguousError(
                f"eSputnik at {self.shown_url} gave no answer after the request went out "
                f"({type(exc).__name__}); it may have stored the chunk"
            ) from None

    def _check(self, response: requests.Response) -> int:
        status = response.status_code
        if 200 <= status < 300:
            return status
        reason = response.text.strip()[:500] or response.reason or ""
        if status in (401, 403):
            raise EsputnikSettingsError(
                f"eSputnik refused the credentials ({status} {reason!r}) at {self.shown_url}: "
                "check ESPUTNIK_API_KEY and that the key's account owns ESPUTNIK_APP_UUID"
            )
        if status == 404:
            raise EsputnikSettingsError(
                f"eSputnik answered 404 ({reason!r}) for {self.shown_url}: check "
                "ESPUTNIK_APP_UUID and ESPUTNIK_BASE_URL"
            )
        if status == 400:
            raise EsputnikRejectedError(f"eSputnik rejected the chunk (400): {reason}", reason)
        if status == 413:
            raise EsputnikTooLargeError(f"eSputnik refused the body as too large (413): {reason}")
        if status >= 500 and status not in RETRY_STATUSES:
            raise EsputnikAmbiguousError(
                f"eSputnik answered {status} at {self.shown_url}: {reason}; it may have stored "
                "the chunk"
            )
        raise EsputnikUnavailableError(
            f"eSputnik answered {status} at {self.shown_url}"
            + (f" after {self.max_retries} retries" if status in RETRY_STATUSES else "")
            + f": {reason}"
        )

    def close(self) -> None:
        self.session.close()

    def __repr__(self) -> str:
        return f"EsputnikClient(url={self.shown_url!r})"
