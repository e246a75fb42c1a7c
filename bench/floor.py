"""The floor: the cheapest Dagster run of the sync's shape (``python -m bench``, case empty).

One unpartitioned asset that does nothing, in one process (``in_process_executor``, as the
sync), launched by the same ``dagster asset materialize`` CLI under the same measurement and
``DAGSTER_HOME``. Its wall time is interpreter and Dagster start-up, loading definitions, the
run's few events and the process's exit: what no change to the sync's own code can take away.
Every figure of the bench is printed beside it.
"""

from __future__ import annotations

import sys
from pathlib import Path

from dagster import Definitions, MaterializeResult, asset, in_process_executor

ASSET = "bench_floor"


@asset(name=ASSET)
def bench_floor() -> MaterializeResult:
    """Does nothing: the run around it is what is measured."""
    return MaterializeResult()


defs = Definitions(assets=[bench_floor], executor=in_process_executor)


def floor_command() -> list[str]:
    """The CLI call of the floor run, shaped like ``dagster_project.demo.materialize_command``."""
    dagster = str(Path(sys.executable).with_name("dagster"))
    return [dagster, "asset", "materialize", "-m", "bench.floor", "--select", ASSET]
