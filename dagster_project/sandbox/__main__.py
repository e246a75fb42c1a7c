"""``python -m dagster_project.sandbox``: run the eSputnik sandbox in the foreground."""

from __future__ import annotations

import argparse
import json
import os

from dagster_project.sandbox.server import SandboxServer


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Local eSputnik token API for demos and tests.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--api-key",
        default=os.environ.get("ESPUTNIK_API_KEY"),
        help="key that Basic auth must carry as password (default: $ESPUTNIK_API_KEY)",
    )
    parser.add_argument(
        "--app-uuid",
        action="append",
        default=None,
        help="known app uuid; repeatable (default: $ESPUTNIK_APP_UUID)",
    )
    parser.add_argument("--verbose", action="store_true", help="log every request")
    parser.add_argument(
        "--faults", default=None, help="fault switches as JSON, e.g. '{\"latency_seconds\": 0.5}'"
    )
    args = parser.parse_args(argv)
    apps = args.app_uuid or [a for a in [os.environ.get("ESPUTNIK_APP_UUID")] if a]
    if not args.api_key or not apps:
        parser.error("set --api-key and --app-uuid (or ESPUTNIK_API_KEY and ESPUTNIK_APP_UUID)")
    server = SandboxServer(args.api_key, apps, args.host, args.port, args.verbose)
    if args.faults:
        server.set_faults(**json.loads(args.faults))
    print(f"eSputnik sandbox listening on {server.base_url} for apps {', '.join(apps)}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
