"""``python -m bench.validation``: validation of new rows per row, native phones vs phonenumbers.

Times ``validate_batch`` (normalizing and refusing the rows not yet pushed, all in memory) and the
GX suite over its result, on the extract's rows as ``bench.datagen`` generates them, once per size
and phone engine, each in a fresh interpreter so that peak memory (max RSS) and caches are its
own. Then the Great Expectations import, email validation per distinct value, and a cProfile of
``validate_batch`` with the engine in use. No database and no Dagster: only the validation.

    python -m bench.validation                       # 100k and 1M rows, both engines
    python -m bench.validation --sizes 100000 --profile-rows 50000
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import resource
import subprocess
import sys
import time

import pandas as pd

from bench.datagen import generate
from dagster_project.core.batch import validate_batch
from dagster_project.core.columns import RAW_COLUMNS
from dagster_project.core.emails import _validated_email, normalize_email, plain_email
from dagster_project.core.phones import choose_phone_engine, phone_engine_name, use_phone_engine
from dagster_project.core.staging import compact_extract

ENGINES = ("rphonenumbers", "phonenumbers")  # the candidate, then the reference
REGION = "UA"
SEED = 20


def extract_rows(count: int, seed: int = SEED) -> pd.DataFrame:
    """The staged extract of ``count`` generated subscribers joined to their CRM rows, typed as
    validation reads it (``compact_extract``: Arrow strings)."""
    batch = generate(count, first_id=1, seed=seed)
    subscribers = pd.DataFrame(batch.subscribers).rename(
        columns={"customer_id": "subscriber_customer_id", "phone": "bot_phone"}
    )
    contacts = pd.DataFrame(batch.contacts).rename(
        columns={"customer_id": "crm_customer_id", "email": "crm_email", "phone": "crm_phone"}
    )
    rows = subscribers.merge(
        contacts, how="left", left_on="subscriber_customer_id", right_on="crm_customer_id"
    )
    rows["source_row"] = range(1, len(rows) + 1)
    return compact_extract(rows[list(RAW_COLUMNS)])


def _engine(name: str) -> None:
    chosen = choose_phone_engine(name)
    if chosen.name != name:
        raise SystemExit(f"{name} is not usable here (see the log): nothing to measure")
    use_phone_engine(chosen)


def measure_one(rows: int, engine: str) -> dict[str, object]:
    """One size with one engine, in this process (run by ``main`` in a child of its own)."""
    from dagster_project.core.expectations import PayloadValidator

    _engine(engine)
    raw = extract_rows(rows)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started, cpu_started = time.perf_counter(), time.process_time()
    result = validate_batch(raw, REGION)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    rss_validated = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    suite = PayloadValidator().validate(result.accepted)
    gx_seconds = time.perf_counter() - started
    return {
        "rows": len(raw),
        "engine": phone_engine_name(),
        "seconds": seconds,
        "us_per_row": seconds / len(raw) * 1e6,
        "cpu_seconds": cpu_seconds,  # less moved than wall time by other jobs on the host
        "accepted": len(result.accepted),
        "rejects": len(result.rejects),
        "gx_seconds": gx_seconds,
        "gx_passed": suite.success,
        "max_rss_mb_before": rss_before / 1024,
        "max_rss_mb": rss_validated / 1024,
    }


def _in_child(rows: int, engine: str) -> dict[str, object]:
    command = [sys.executable, "-m", "bench.validation", "--one", str(rows), engine]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr}")
    return json.loads(done.stdout.splitlines()[-1])


def gx_import_seconds() -> float:
    """Importing Great Expectations in a fresh interpreter (what a run with rows to send pays)."""
    script = (
        "import os, time; os.environ.setdefault('GX_ANALYTICS_ENABLED', 'false'); "
        "t = time.perf_counter(); import great_expectations; print(time.perf_counter() - t)"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    return float(done.stdout.strip().splitlines()[-1])


def email_figures(rows: int) -> str:
    """Distinct CRM emails of ``rows`` rows: how many take the fast path, and what each path
    costs per value (email-validator's verdicts are cached, so a value is checked once)."""
    emails = extract_rows(rows)["crm_email"].dropna().astype(object)
    distinct = pd.unique(emails)
    texts = [str(v).strip().lower() for v in distinct]
    fast = [t for t in texts if plain_email(t)]
    slow = [t for t in texts if not plain_email(t)]
    started = time.perf_counter()
    for value in distinct:
        normalize_email(value)
    first = time.perf_counter() - started
    started = time.perf_counter()
    for value in distinct:
        normalize_email(value)
    again = time.perf_counter() - started
    fast_started = time.perf_counter()
    for text in fast:
        plain_email(text)
    fast_seconds = time.perf_counter() - fast_started
    cache = _validated_email.cache_info()
    return (
        f"emails: {len(emails):,} present, {len(distinct):,} distinct; {len(fast):,} plain "
        f"({fast_seconds / max(len(fast), 1) * 1e6:.1f} µs each by the expression), "
        f"{len(slow):,} through email-validator; all distinct once: {first:.2f} s "
        f"({first / len(distinct) * 1e6:.1f} µs a value), again (cached verdicts): "
        f"{again:.2f} s ({again / len(distinct) * 1e6:.1f} µs a value); cache {cache.currsize:,} "
        f"verdicts"
    )


def profile(rows: int, top: int) -> str:
    """cProfile of ``validate_batch`` with the native engine, by own time."""
    _engine(ENGINES[0])
    raw = extract_rows(rows)
    profiler = cProfile.Profile()
    profiler.runcall(validate_batch, raw, REGION)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    lines = out.getvalue().splitlines()
    start = next(i for i, line in enumerate(lines) if "ncalls" in line)
    return "\n".join(line for line in lines[start:] if line.strip())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.validation",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--sizes", default="100000,1000000", help="rows per measurement, comma-separated"
    )
    parser.add_argument("--profile-rows", type=int, default=100_000)
    parser.add_argument("--top", type=int, default=20, help="profile entries shown")
    parser.add_argument("--one", nargs=2, metavar=("ROWS", "ENGINE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure_one(int(args.one[0]), args.one[1])))
        return

    sizes = [int(size.replace("_", "")) for size in args.sizes.split(",") if size.strip()]
    print(f"validate_batch over generated extract rows (region {REGION}), one core")
    print(
        f"{'rows':>10} {'engine':<14} {'seconds':>8} {'µs/row':>7} {'CPU s':>6} {'accepted':>9} "
        f"{'GX suite s':>10} {'max RSS MB':>10}"
    )
    for rows in sizes:
        for engine in ENGINES:
            m = _in_child(rows, engine)
            print(
                f"{m['rows']:>10,} {m['engine']:<14} {m['seconds']:>8.2f} "
                f"{m['us_per_row']:>7.1f} {m['cpu_seconds']:>6.2f} {m['accepted']:>9,} "
                f"{m['gx_seconds']:>10.2f} "
                f"{m['max_rss_mb']:>10,.0f}"
            )
    print(f"\nGreat Expectations import, fresh interpreter: {gx_import_seconds():.2f} s")
    print(email_figures(min(sizes)))
    print(f"\ncProfile of validate_batch, {args.profile_rows:,} rows, {ENGINES[0]}, own time:")
    print(profile(args.profile_rows, args.top))


if __name__ == "__main__":
    main()
