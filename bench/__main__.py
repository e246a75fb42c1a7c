"""``python -m bench``: time the real sync (Dagster CLI + sandbox) against a naive baseline.

Every measured sync is the documented CLI call without run config: it reconciles every
subscriber against the ledger. Each figure is printed beside the floor, a one-asset Dagster run
that does nothing (bench/floor.py), and the targets are printed under the table.

Examples::

    python -m bench --quick --backends sqlite,postgres
    python -m bench --sizes 1000000 --cases first,incremental,noop
    python -m bench --sizes 5000000 --cases incremental          # 4.5M synced, then 500k new
    python -m bench --sizes 20000 --cases empty --noop-repeats 3    # the floor only
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from dataclasses import fields
from pathlib import Path

from bench.calibrate import describe, machine_speed
from bench.cases import CASES, Bench, Options
from bench.instance import INSTANCES, prepare
from bench.report import (
    RESULTS_DIR,
    environment,
    format_table,
    snapshot_code,
    timestamp,
    write_json,
)
from bench.sync_run import RunSettings, profiler_installed
from bench.warehouse import DEFAULT_POSTGRES_ADMIN_URL

QUICK_SIZES = [20_000, 100_000]
QUICK_SAMPLE = 2_000
BACKENDS = ("sqlite", "postgres")


def _csv(kind: type, allowed: tuple[str, ...] | None = None):
    def parse(value: str) -> list:
        items = [kind(v.strip().replace("_", "")) for v in value.split(",") if v.strip()]
        if allowed:
            unknown = [i for i in items if i not in allowed]
            if unknown:
                raise argparse.ArgumentTypeError(f"{unknown} not among {list(allowed)}")
        return items

    return parse


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--sizes", type=_csv(int), default=[1_000_000], help="rows per case")
    parser.add_argument(
        "--backends", type=_csv(str, BACKENDS), default=["sqlite"], help="sqlite,postgres"
    )
    parser.add_argument(
        "--cases", type=_csv(str, CASES), default=list(CASES), help="empty,first,incremental,noop"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke run: sizes {QUICK_SIZES}, baseline sample "
        f"{QUICK_SAMPLE} (overrides --sizes and --baseline-sample)",
    )
    parser.add_argument(
        "--new-fraction", type=float, default=0.1, help="share of new rows in 'incremental'"
    )
    parser.add_argument("--chunk-size", type=int, default=1000, help="ESPUTNIK_CHUNK_SIZE")
    parser.add_argument(
        "--requests-per-second",
        type=float,
        default=0.0,
        help="ESPUTNIK_REQUESTS_PER_SECOND for the sync (0: no limit); the table then shows "
        "how busy the push kept it",
    )
    parser.add_argument(
        "--max-in-flight", type=int, default=1, help="ESPUTNIK_MAX_IN_FLIGHT for the sync"
    )
    parser.add_argument(
        "--baseline-sample", type=int, default=20_000, help="rows the naive loop runs (0: none)"
    )
    parser.add_argument(
        "--noop-repeats",
        type=int,
        default=1,
        help="measure the no-op this many times in a row (it changes nothing); the summary "
        "gives the median",
    )
    parser.add_argument(
        "--no-seed-contacts",
        dest="seed_contacts",
        action="store_false",
        help="do not pre-register contacts in the sandbox (every token then creates one)",
    )
    parser.add_argument(
        "--instance",
        choices=INSTANCES,
        default="sqlite",
        help="the Dagster instance's storage, for the sync and the floor alike (postgres: "
        "deploy/dagster.postgres.yaml in a throw-away database on --postgres-url's server)",
    )
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_ADMIN_URL)
    parser.add_argument(
        "--workdir", type=Path, default=None, help="for SQLite files and DAGSTER_HOME (tmp dir)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the warehouses and workdir")
    parser.add_argument(
        "--profile",
        choices=("py-spy", "pyinstrument"),
        default=None,
        help="profile the measured runs (must be installed; skews their timings)",
    )
    parser.add_argument(
        "--no-snapshot",
        dest="snapshot",
        action="store_false",
        help="run the live dagster_project instead of a copy taken at start",
    )
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if args.profile and not profiler_installed(args.profile):
        parser.error(
            f"--profile {args.profile}: {args.profile} is not installed in this environment "
            f"(it is not a project dependency): {Path(sys.executable).parent}/pip install "
            f"{args.profile}"
        )
    if args.noop_repeats < 1:
        parser.error(f"--noop-repeats {args.noop_repeats}: must be 1 or more")
    if args.quick:
        args.sizes, args.baseline_sample = QUICK_SIZES, QUICK_SAMPLE
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stamp = timestamp()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="esputnik-bench-"))
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    logs = RESULTS_DIR / stamp
    logs.mkdir(parents=True, exist_ok=True)
    dagster_home = workdir / "dagster_home"
    dagster_home.mkdir(exist_ok=True)
    instance = prepare(args.instance, dagster_home, args.postgres_url)

    code = snapshot_code(workdir / "code") if args.snapshot else None
    extra_env = {"PYTHONPATH": code["path"]} if code else {}
    extra_env |= instance.env | {
        "ESPUTNIK_REQUESTS_PER_SECOND": str(args.requests_per_second),
        "ESPUTNIK_MAX_IN_FLIGHT": str(args.max_in_flight),
    }
    started = time.monotonic()

    def say(message: str) -> None:
        print(f"[{time.monotonic() - started:7.1f}s] {message}", flush=True)

    # The options named as their command-line flags are copied as they are.
    flags = {f.name: getattr(args, f.name) for f in fields(Options) if hasattr(args, f.name)}
    options = Options(
        **flags,
        postgres_admin_url=args.postgres_url,
        run=RunSettings(
            chunk_size=args.chunk_size,
            dagster_home=dagster_home,
            logs=logs,
            profiler=args.profile,
            extra_env=extra_env,
        ),
    )
    say(f"workdir {workdir}; logs in {logs}")
    say(f"Dagster instance: {instance.describe()}")
    if code:
        say(f"running a snapshot of dagster_project (sha256 {str(code['sha256'])[:12]})")
    speed = {"start": machine_speed()}
    say(f"machine reference: {describe(speed['start'])}")
    bench = Bench(options, workdir, say)
    failure: BaseException | None = None
    try:
        bench.run_all()
    except (Exception, KeyboardInterrupt) as exc:
        failure = exc
        say(f"stopped: {exc}")
    finally:
        if not args.keep:
            instance.drop()
            if args.workdir is None:
                shutil.rmtree(workdir, ignore_errors=True)
    speed["end"] = machine_speed()
    say(f"machine reference: {describe(speed['end'])}")
    payload = {
        "started": stamp,
        "argv": sys.argv[1:] if argv is None else argv,
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "environment": environment(),
        "machine_reference": speed,
        "dagster_instance": instance.describe(),
        "code": code,
        "error": None if failure is None else repr(failure),
        "results": bench.entries,
    }
    path = write_json(payload, stamp)
    if bench.entries:
        print()
        print(format_table(bench.entries))
        print(f"Dagster instance: {instance.describe()}")
        print(f"machine reference (bench/calibrate.py) at start: {describe(speed['start'])}")
        print(f"                                       at end:   {describe(speed['end'])}")
    print(f"\nresults: {path}")
    return 1 if failure else 0


if __name__ == "__main__":
    sys.exit(main())
