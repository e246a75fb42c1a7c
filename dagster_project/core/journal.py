"""A local file for chunks eSputnik accepted that the ledger could not take.

After a 2xx the chunk must reach the ledger, or the next run sends it again. When the state
database refuses the write even after retries ("database is locked", a PostgreSQL restart),
the chunk goes to this journal instead (one JSON line, flushed and fsynced), the push stops,
and the next push replays the journal into the ledger before it sends anything.

The file lives on the machine that ran the push: by default beside a SQLite state database,
else under ``./.demo``; ``SYNC_JOURNAL_DIR`` names another directory (one every run can read,
where runs move between machines).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine, bindparam, text

from dagster_project.core.ledger import record_chunk


def default_journal_dir(engine: Engine) -> Path:
    """Beside a SQLite state file, else ``./.demo`` (the demo's own directory)."""
    database = engine.url.database
    if engine.dialect.name == "sqlite" and database not in (None, "", ":memory:"):
        return Path(database).resolve().parent
    return Path.cwd() / ".demo"


class LedgerJournal:
    """The journal of one app's accepted chunks not yet in the ledger."""

    def __init__(self, directory: Path, app_uuid: str) -> None:
        self.path = Path(directory) / f"esputnik-ledger-journal-{app_uuid}.jsonl"

    def keep(self, ledger: list[dict], resolved: list[str], pushed_at: datetime) -> None:
        """Append one accepted chunk, on disk before this returns."""
        line = json.dumps(
            {"pushed_at": pushed_at.isoformat(), "ledger": ledger, "resolved": resolved},
            ensure_ascii=False,
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def replay(self, engine: Engine, log: Callable[[str], None] = print) -> int:
        """Record every journaled chunk in the ledger, then delete the file; returns the tokens
        recorded. A token the ledger already holds live is skipped: the write that failed may
        have committed after all. Call it under the push lock."""
        if not self.path.exists():
            return 0
        recorded = 0
        for number, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), 1):
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                log(f"{self.path}:{number}: unreadable line left out (a write cut short)")
                continue
            ledger = entry["ledger"]
            live = _live_tokens(engine, ledger)
            fresh = [row for row in ledger if row["token"] not in live]
            pushed_at = datetime.fromisoformat(entry["pushed_at"])
            record_chunk(engine, fresh, entry["resolved"], pushed_at=pushed_at)
            recorded += len(fresh)
        self.path.unlink()
        log(f"journal {self.path}: {recorded:,} accepted tokens recorded in the ledger")
        return recorded


def _live_tokens(engine: Engine, ledger: list[dict]) -> set[str]:
    if not ledger:
        return set()
    query = text(
        "SELECT token FROM esputnik_ledger_live WHERE app_uuid = :app_uuid AND token IN :tokens"
    ).bindparams(bindparam("tokens", expanding=True))
    params = {"app_uuid": ledger[0]["app_uuid"], "tokens": [row["token"] for row in ledger]}
    with engine.connect() as conn:
        return {row[0] for row in conn.execute(query, params)}
