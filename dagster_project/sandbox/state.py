"""The sandbox's in-memory model of eSputnik: apps, contacts and stored tokens."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

IDENTIFIER_PRIORITY = ("contactId", "externalCustomerId", "phone", "email")


class BadRequest(Exception):
    """A body eSputnik would answer with 400 and this text."""


@dataclass
class SandboxState:
    """Everything the sandbox holds; all access goes through the lock."""

    api_key: str
    app_uuids: set[str]
    contacts: dict[int, dict] = field(default_factory=dict)
    tokens: list[dict] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    next_contact_id: int = 100_001
    # identifier name -> value -> contact id, so resolution stays O(1) at benchmark volumes
    index: dict[str, dict[object, int]] = field(default_factory=dict)
    requests_seen: int = 0
    request_times: list[float] = field(default_factory=list)
    probes_seen: int = 0  # requests with an empty token list (they store nothing)
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def request_started(self) -> None:
        """Count a token request and how many are open at once (for rate/concurrency tests)."""
        with self.lock:
            self.requests_seen += 1
            self.request_times.append(time.monotonic())
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def probe_seen(self) -> None:
        with self.lock:
            self.probes_seen += 1

    def request_finished(self) -> None:
        with self.lock:
            self.in_flight -= 1

    def add_contact(self, contact: dict) -> dict:
        """Seed a contact (as if created in eSputnik beforehand); returns it with its id."""
        with self.lock:
            return self._create_contact(contact, contact.get("id"))

    def _create_contact(self, identifiers: dict, contact_id: int | None = None) -> dict:
        new_id = int(contact_id) if contact_id else self.next_contact_id
        self.next_contact_id = max(self.next_contact_id, new_id + 1)
        contact = {"id": new_id}
        for key in IDENTIFIER_PRIORITY[1:]:
            if identifiers.get(key):
                contact[key] = identifiers[key]
                self.index.setdefault(key, {}).setdefault(identifiers[key], new_id)
        self.contacts[new_id] = contact
        return contact

    def _find_contact(self, key: str, value: object) -> dict | None:
        if key == "contactId":
            return self.contacts.get(int(value))
        contact_id = self.index.get(key, {}).get(value)
        return None if contact_id is None else self.contacts[contact_id]

    def store_tokens(self, app_uuid: str, body: object) -> list[dict]:
        """Validate a whole request, then append each token bound to its resolved contact."""
        entries = validate_body(body)
        stored_at = datetime.now(UTC).isoformat()  # one request, one moment
        with self.lock:
            stored = []
            for entry, key in entries:
                contact = self._find_contact(key, entry[key])
                created = contact is None
                if created:
                    contact = self._create_contact(entry)
                record = {
                    "app_uuid": app_uuid,
                    "token": entry["token"],
                    "contact_id": contact["id"],
                    "resolved_by": key,
                    "contact_created": created,
                    "sent": {k: entry[k] for k in IDENTIFIER_PRIORITY if k in entry},
                    "stored_at": stored_at,
                }
                self.tokens.append(record)
                stored.append(record)
            return stored

    def send_message(
        self,
        status: str,
        reason: str | None = None,
        tokens: list[str] | None = None,
        message_id: str | None = None,
        occurred_at: str | None = None,
    ) -> list[dict]:
        """Report a message status for live tokens (all, or those listed), as eSputnik would.

        FAILED with reason Forbidden means the user blocked the bot: eSputnik drops the token,
        so it stops being live here too.
        """
        when = occurred_at or datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
        with self.lock:
            message = message_id or f"msg-{len(self.events) + 1}"
            live = [t for t in self.tokens if not t.get("removed_at")]
            wanted = None if tokens is None else set(tokens)
            emitted = []
            for record in live:
                if wanted is not None and record["token"] not in wanted:
                    continue
                event = {
                    "token": record["token"],
                    "message_id": message,
                    "status": status,
                    "reason": reason,
                    "occurred_at": when,
                }
                self.events.append(event)
                emitted.append(event)
                if status == "FAILED" and (reason or "").lower() == "forbidden":
                    record["removed_at"] = when
            return emitted

    def snapshot(self) -> dict:
        with self.lock:
            return {
                "apps": sorted(self.app_uuids),
                "requests_seen": self.requests_seen,
                "probes_seen": self.probes_seen,
                "max_in_flight": self.max_in_flight,
                "contacts": list(self.contacts.values()),
                "tokens": list(self.tokens),
                "events": list(self.events),
            }

    def reset(self) -> None:
        with self.lock:
            self.contacts.clear()
            self.tokens.clear()
            self.index.clear()
            self.events.clear()
            self.requests_seen = 0
            self.probes_seen = 0
            self.request_times.clear()
            self.max_in_flight = 0


def _resolving_key(entry: dict) -> str | None:
    """The identifier eSputnik resolves the contact by: the first present in priority order."""
    return next((k for k in IDENTIFIER_PRIORITY if entry.get(k) not in (None, "")), None)


def validate_body(body: object) -> list[tuple[dict, str]]:
    """The 400 rules: a ``tokens`` array whose entries each have a token and an identifier.
    Returns each entry with the identifier that resolves its contact."""
    if not isinstance(body, dict) or not isinstance(body.get("tokens"), list):
        raise BadRequest("Request body must be an object with a 'tokens' array")
    entries = []
    for index, entry in enumerate(body["tokens"]):
        if not isinstance(entry, dict):
            raise BadRequest(f"tokens[{index}] must be an object")
        token = entry.get("token")
        if not isinstance(token, str) or not token.strip():
            raise BadRequest(f"tokens[{index}]: 'token' is required")
        key = _resolving_key(entry)
        if key is None:
            raise BadRequest(
                f"tokens[{index}] (token {token!r}): one of contactId, externalCustomerId, "
                "phone or email is required"
            )
        contact_id = entry.get("contactId")
        if contact_id is not None and (not isinstance(contact_id, int) or contact_id <= 0):
            raise BadRequest(
                f"tokens[{index}] (token {token!r}): contactId must be a positive integer"
            )
        entries.append((entry, key))
    return entries
