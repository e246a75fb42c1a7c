"""The bench cases, each a sequence of seed -> (setup run) -> measured run on one warehouse.

- ``empty``: the floor, a one-asset Dagster run that does nothing (bench/floor.py), launched by
  the same CLI under the same measurement and Dagster instance: interpreter and Dagster
  start-up, the run's events and exit, on the day's host. No sync can go under it, and every
  figure is printed beside it (the table's ``floor`` and ``- floor`` columns). It is measured
  ``noop_repeats`` times (the median is the floor), then the real sync runs once over a warehouse
  without rows (``empty warehouse``: the floor plus the sync's own fixed cost). It has no size,
  so it runs once per backend, first.
- ``first``: N rows, empty ledger, everything is new.
- ``incremental``: seed N - new rows, sync them (setup run), add ``new`` rows with new chat ids,
  sync again (measured): the ledger holds all but the new tokens. The new rows' subscription
  dates spread over the whole history like every other row's (datagen.START .. END): late
  arrivals, which a run over recent days only would miss.
- ``noop``: rerun over every subscriber with nothing changed; reuses the warehouse of the
  previous case when it is fully synced at N rows, else seeds and syncs one first. A no-op
  leaves the warehouse and the ledger as they were, so it is measured ``noop_repeats`` times in
  a row (the table's summary gives the median): single runs on a shared host vary by tens of
  per cent.

The baseline (baseline.py) runs right before each measured sync, on the same data and ledger.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench import datagen, warehouse
from bench.baseline import run_baseline
from bench.hotspots import summarize
from bench.sandbox import API_KEY, APP_UUID, BASELINE_APP_UUID, Sandbox
from bench.sync_run import RunSettings, run_floor, run_sync

CASES = ("empty", "first", "incremental", "noop")
FLOOR = "empty"  # the entries of the floor run carry this case name
EMPTY_WAREHOUSE = "empty warehouse"


@dataclass
class Options:
    """What to run (from the command line)."""

    backends: list[str]
    sizes: list[int]
    cases: list[str]
    new_fraction: float = 0.1
    baseline_sample: int = 20_000
    noop_repeats: int = 1
    seed_contacts: bool = True
    postgres_admin_url: str = warehouse.DEFAULT_POSTGRES_ADMIN_URL
    seed: int = 7
    keep: bool = False
    run: RunSettings = field(default_factory=RunSettings)


@dataclass
class Lane:
    """One warehouse being built up across runs, and what its sandbox must know next."""

    db: warehouse.Warehouse
    rows: int = 0
    next_id: int = 0
    synced: bool = False
    pending_contacts: list[dict] = field(default_factory=list)
    seeding: list[dict] = field(default_factory=list)


class Bench:
    """Runs the selected cases in order, keeping one warehouse alive while cases can share it."""

    def __init__(self, options: Options, workdir: Path, say: Callable[[str], None]) -> None:
        self.options, self.workdir, self.say = options, workdir, say
        self.entries: list[dict] = []
        self.lane: Lane | None = None
        self.counter = 0

    # --- warehouse -------------------------------------------------------------------------
    def fresh(self, backend: str, label: str) -> Lane:
        self.drop_lane()
        db = warehouse.create(backend, self.workdir, label, self.options.postgres_admin_url)
        self.lane = Lane(db)
        return self.lane

    def drop_lane(self) -> None:
        if self.lane is not None and not self.options.keep:
            self.lane.db.drop()
        self.lane = None

    def add_rows(self, lane: Lane, count: int) -> None:
        """Generate and bulk-load ``count`` rows with chat ids the lane has not used yet."""
        started = time.perf_counter()
        batch = datagen.generate(count, lane.next_id, self.options.seed + lane.next_id)
        generated = time.perf_counter() - started
        started = time.perf_counter()
        warehouse.load(lane.db, batch)
        loaded = time.perf_counter() - started
        lane.rows += batch.subscriber_rows
        lane.next_id += count
        lane.synced = False
        if self.options.seed_contacts:
            lane.pending_contacts.extend(batch.sandbox_contacts)
        lane.seeding.append(
            {
                "subscriber_rows": batch.subscriber_rows,
                "crm_contacts": batch.contact_rows,
                "generate_seconds": generated,
                "load_seconds": loaded,
            }
        )
        self.say(
            f"  seeded {batch.subscriber_rows:,} subscribers + {batch.contact_rows:,} contacts "
            f"into {lane.db.backend} (generate {generated:.1f}s, load {loaded:.1f}s; "
            f"warehouse now {lane.rows:,} rows)"
        )

    # --- runs ------------------------------------------------------------------------------
    def _settings(self, role: str) -> RunSettings:
        settings = self.options.run
        return RunSettings(
            chunk_size=settings.chunk_size,
            dagster_home=settings.dagster_home,
            logs=settings.logs,
            profiler=settings.profiler if role == "measured" else None,
            extra_env=settings.extra_env,
        )

    def floor(self, backend: str) -> dict:
        """One floor run (bench/floor.py); its entry sits with ``backend``'s figures."""
        self.counter += 1
        label = f"{self.counter:02d}-{backend}-floor"
        self.say(f"  {label}: dagster asset materialize -m bench.floor ...")
        result = run_floor(self._settings("measured"), label)
        entry = {"backend": backend, "case": FLOOR, "role": "measured", "label": label}
        entry["sync"] = result
        self.entries.append(entry)
        if result["returncode"] != 0:
            entry["failed"] = True
            tail = "\n    ".join(result.get("error_tail", []))
            raise RuntimeError(f"{label}: the floor run failed; log tail:\n    {tail}")
        self.say(
            f"  {label}: wall {result['wall_seconds']:.1f}s, "
            f"peak RSS {result['peak_rss_mb']:.0f} MB"
        )
        return entry

    def sync(self, lane: Lane, backend: str, case: str, role: str, baseline: bool = True) -> dict:
        """One sync run against a fresh sandbox; the baseline first when the run is measured
        (and ``baseline`` is left on)."""
        self.counter += 1
        label = f"{self.counter:02d}-{backend}-{lane.rows}-{case.replace(' ', '-')}-{role}"
        settings = self.options.run
        run_settings = self._settings(role)
        entry: dict = {"backend": backend, "case": case, "role": role, "label": label}
        entry["seeding"], lane.seeding = lane.seeding, []
        with Sandbox(settings.logs / f"{label}.sandbox.log", settings.extra_env) as sandbox:
            started = time.perf_counter()
            sandbox.seed_contacts(lane.pending_contacts)
            entry["sandbox_contacts_seeded"] = len(lane.pending_contacts)
            entry["sandbox_seed_seconds"] = time.perf_counter() - started
            if role == "measured" and baseline and self.options.baseline_sample > 0:
                entry["baseline"] = self.baseline(lane, sandbox)
            self.say(f"  {label}: dagster asset materialize ...")
            result = run_sync(lane.db, sandbox.base_url, run_settings, label)
        entry["sync"] = result
        if result["returncode"] != 0:
            entry["failed"] = True
            self.entries.append(entry)
            tail = "\n    ".join(result.get("error_tail", []))
            raise RuntimeError(f"{label}: the dagster run failed; log tail:\n    {tail}")
        lane.pending_contacts = []
        lane.synced = True
        record = result["run_record"]
        rows = int(record.get("rows_extracted") or 0)
        entry["rows_per_second"] = rows / result["wall_seconds"] if rows else None
        baseline = entry.get("baseline")
        if baseline and baseline["estimated_rows_per_second"]:
            entry["speedup"] = entry["rows_per_second"] / baseline["estimated_rows_per_second"]
        self.say(
            f"  {label}: wall {result['wall_seconds']:.1f}s, {rows:,} rows, "
            f"{record.get('tokens_pushed')} pushed, peak RSS {result['peak_rss_mb']:.0f} MB"
        )
        if run_settings.profiler == "py-spy" and result.get("profile"):
            entry["hotspots"] = summarize(Path(str(result["profile"])))
            self.say(f"  py-spy profile {result['profile']}:\n{entry['hotspots']}")
        self.entries.append(entry)
        return entry

    def baseline(self, lane: Lane, sandbox: Sandbox) -> dict:
        """The naive loop on the lane's current data, against the same sandbox."""
        engine = lane.db.engine()
        try:
            result = run_baseline(
                engine,
                sandbox.base_url,
                APP_UUID,
                BASELINE_APP_UUID,
                API_KEY,
                self.options.baseline_sample,
            )
        finally:
            engine.dispose()
        self.say(
            f"  naive baseline: {result.sample_rows:,} sampled rows in {result.loop_seconds:.1f}s "
            f"(+{result.read_seconds:.1f}s reading the extract), {result.tokens_posted:,} posted; "
            f"extrapolated {result.estimated_rows_per_second:,.0f} rows/s"
        )
        return result.as_dict()

    # --- cases -----------------------------------------------------------------------------
    def run_case(self, backend: str, size: int, case: str) -> None:
        """Build what the case needs (see the module docstring), then its measured run."""
        new = max(1, round(size * self.options.new_fraction))
        self.say(f"[{backend} N={size:,}] case {case}")
        if case == "empty":
            for _ in range(self.options.noop_repeats):
                self.floor(backend)
            lane = self.fresh(backend, f"{size}-empty")
            self.sync(lane, backend, EMPTY_WAREHOUSE, "measured", baseline=False)
        elif case == "first":
            lane = self.fresh(backend, f"{size}-first")
            self.add_rows(lane, size)
            self.sync(lane, backend, case, "measured")
        elif case == "incremental":
            lane = self.fresh(backend, f"{size}-incremental")
            self.add_rows(lane, size - new)
            self.sync(lane, backend, case, "setup")
            self.add_rows(lane, new)
            self.sync(lane, backend, case, "measured")
        elif case == "noop":
            lane = self.lane
            if lane is None or not lane.synced or lane.db.backend != backend or lane.rows != size:
                lane = self.fresh(backend, f"{size}-noop")
                self.add_rows(lane, size)
                self.sync(lane, backend, case, "setup")
            for repeat in range(self.options.noop_repeats):
                self.sync(lane, backend, case, "measured", baseline=repeat == 0)
        else:
            raise ValueError(f"unknown case {case!r}")

    def run_all(self) -> None:
        try:
            for backend in self.options.backends:
                for size in self.options.sizes:
                    for case in CASES:
                        if case == "empty" and size != self.options.sizes[0]:
                            continue  # the same run whatever the size
                        if case in self.options.cases:
                            self.run_case(backend, size, case)
                    self.drop_lane()
        finally:
            self.drop_lane()
