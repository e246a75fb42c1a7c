"""``python -m dagster_project.release``: the explicit way back for tokens the sync holds back.

    python -m dagster_project.release in-doubt --app UUID [--tokens T ...] [--as-pushed]
    python -m dagster_project.release quarantine --app UUID [--tokens T ...] [--older-than-days N]

``in-doubt``: tokens whose request got no usable answer twice (eSputnik may hold two copies).
Look them up in eSputnik first: ``--as-pushed`` records those it holds in the ledger, so they
are never sent again; without it they are sent again by the next run. ``quarantine``: tokens
eSputnik refused with 400; released ones are sent again by the next run (use it once a
systemic refusal is fixed, or with ``--older-than-days`` from a scheduler as an expiry).
The state database is ``--state-url``, else ``SYNC_STATE_URL``, else ``WAREHOUSE_URL``, else
the demo warehouse; the app is ``--app``, else ``ESPUTNIK_APP_UUID``.
"""

from __future__ import annotations

import argparse
import os
from datetime import timedelta

from sqlalchemy import create_engine

from dagster_project.core.db import utc_now
from dagster_project.core.held import release_in_doubt, release_quarantined
from dagster_project.core.schema import ensure_state_schema


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dagster_project.release",
        description="Release tokens held back (in doubt or quarantined) for the next run.",
    )
    parser.add_argument("what", choices=["in-doubt", "quarantine"])
    parser.add_argument("--app", default=os.environ.get("ESPUTNIK_APP_UUID"))
    parser.add_argument(
        "--state-url", default=os.environ.get("SYNC_STATE_URL") or os.environ.get("WAREHOUSE_URL")
    )
    parser.add_argument("--tokens", nargs="+", help="only these tokens (default: all the app's)")
    parser.add_argument(
        "--as-pushed", action="store_true", help="in-doubt: eSputnik holds them; never resend"
    )
    parser.add_argument(
        "--older-than-days", type=float, help="quarantine: only entries older than this"
    )
    args = parser.parse_args(argv)
    if not args.app:
        parser.error("set --app or ESPUTNIK_APP_UUID")
    if not args.state_url:
        from dagster_project.resources import demo_warehouse_url  # imports Dagster: only here

        args.state_url = demo_warehouse_url()
    engine = create_engine(args.state_url)
    try:
        ensure_state_schema(engine)
        if args.what == "in-doubt":
            released = release_in_doubt(engine, args.app, args.tokens, as_pushed=args.as_pushed)
            fate = "recorded as pushed" if args.as_pushed else "to be sent by the next run"
        else:
            before = None
            if args.older_than_days is not None:
                before = utc_now() - timedelta(days=args.older_than_days)
            released = release_quarantined(engine, args.app, args.tokens, before)
            fate = "to be sent by the next run"
    finally:
        engine.dispose()
    print(f"released {released} tokens ({args.what}), {fate}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
