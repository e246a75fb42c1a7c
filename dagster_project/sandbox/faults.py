"""Fault injection for the sandbox: what real networks and a loaded eSputnik do.

Set with ``POST /_sandbox/faults`` (JSON body, every field optional) or ``--faults JSON``:

- ``fail_first``: answer the next N token requests with ``fail_status`` (default 429),
  with ``Retry-After: retry_after`` seconds when set;
- ``fail_after``: answer every token request after the first N with ``fail_status``;
- ``error_rate``: share of token requests answered with a random status from ``error_statuses``;
- ``drop_rate``: share of requests whose connection is closed without an answer, before storing;
- ``drop_after_store_rate``: share closed without an answer *after* the tokens were stored
  (the lost-response case a client cannot tell from a failure);
- ``latency_seconds``: delay before handling each token request (only the first
  ``latency_first`` requests when that is set): past the client's read timeout the tokens are
  still stored, as a slow eSputnik would;
- ``reject_tokens``: tokens answered with 400 and a reason, wherever they appear in a body;
- ``max_body_bytes``: bodies above this size get 413;
- ``sequence``: outcomes of the next token requests, one entry each, before any other switch:
  ``"ok"`` (handled normally), ``"drop"`` (closed before storing), a status such as ``"503"``
  (answered without storing), ``"store-drop"`` (stored, then closed without an answer) or
  ``"store-502"`` (stored, then answered with that status): the answers a client cannot tell
  from a failure;
- ``seed``: makes the random draws repeatable.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field, fields


@dataclass
class Faults:
    fail_first: int = 0
    fail_after: int | None = None
    fail_status: int = 429
    retry_after: float | None = None
    error_rate: float = 0.0
    error_statuses: list[int] = field(default_factory=lambda: [500, 502, 503, 504])
    drop_rate: float = 0.0
    drop_after_store_rate: float = 0.0
    latency_seconds: float = 0.0
    latency_first: int | None = None
    reject_tokens: list[str] = field(default_factory=list)
    max_body_bytes: int | None = None
    sequence: list[str] = field(default_factory=list)
    seed: int | None = None
    _rng: random.Random = field(default_factory=random.Random, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_json(cls, values: dict) -> Faults:
        known = {f.name for f in fields(cls) if not f.name.startswith("_")}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown fault switches {sorted(unknown)}; known: {sorted(known)}")
        faults = cls(**values)
        for outcome in faults.sequence:
            after_store = outcome.removeprefix("store-")
            if outcome not in ("ok", "drop") and not (
                after_store.isdigit() or after_store == "drop"
            ):
                raise ValueError(f"unknown outcome {outcome!r} in sequence")
        faults._rng = random.Random(faults.seed)
        return faults

    _seen: int = field(default=0, repr=False)

    def next_request(self) -> tuple[bool, float]:
        """Count a token request; return (force a failure?, latency to apply)."""
        with self._lock:
            self._seen += 1
            forced = self.fail_first > 0 or (
                self.fail_after is not None and self._seen > self.fail_after
            )
            if self.fail_first > 0:
                self.fail_first -= 1
            slow = self.latency_first is None or self._seen <= self.latency_first
            return forced, self.latency_seconds if slow else 0.0

    def next_outcome(self) -> str:
        """The next ``sequence`` entry, or ``"ok"`` once it is spent."""
        with self._lock:
            return self.sequence.pop(0) if self.sequence else "ok"

    def draw(self, rate: float) -> bool:
        with self._lock:
            return rate > 0 and self._rng.random() < rate

    def pick_error_status(self) -> int:
        with self._lock:
            return self._rng.choice(self.error_statuses)
