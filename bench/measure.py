"""Run one command and report its wall time, CPU time and peak memory, as JSON.

Used as ``python -m bench.measure --out result.json --log run.log -- command ...``: a fresh
process per measured run, because ``getrusage(RUSAGE_CHILDREN)`` accumulates over every child a
process ever waited for. In this helper it covers exactly the command and its descendants
(``ru_maxrss`` is the largest single process). A /proc poll adds the peak of the whole process
tree's summed RSS, in case the command spawns helpers that live at the same time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import threading
import time
from pathlib import Path

POLL_SECONDS = 0.2


def _status_kb(pid: int, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _tree(root: int) -> list[int]:
    """``root`` and its descendants, from each process's parent id in /proc/<pid>/stat."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(parents.get(pid, []))
    return out


class TreePeak(threading.Thread):
    """Polls a process tree until stopped: summed VmRSS, the root's and the largest VmHWM."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_tree_kb = 0
        self.root_hwm_kb = 0
        self.process_hwm_kb = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(POLL_SECONDS):
            tree = _tree(self.pid)
            total = sum(_status_kb(pid, "VmRSS") for pid in tree)
            self.peak_tree_kb = max(self.peak_tree_kb, total)
            self.root_hwm_kb = max(self.root_hwm_kb, _status_kb(self.pid, "VmHWM"))
            biggest = max((_status_kb(pid, "VmHWM") for pid in tree), default=0)
            self.process_hwm_kb = max(self.process_hwm_kb, biggest)


def measure(command: list[str], log_path: Path, cwd: str | None = None) -> dict[str, object]:
    with log_path.open("wb") as log:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=cwd)
        poller = TreePeak(process.pid)
        poller.start()
        returncode = process.wait()
        wall = time.perf_counter() - started
        poller.done.set()
        poller.join()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "returncode": returncode,
        "wall_seconds": wall,
        "cpu_user_seconds": usage.ru_utime,
        "cpu_system_seconds": usage.ru_stime,
        # ru_maxrss (KiB) misses grandchildren nobody waited for, e.g. under py-spy: the
        # largest VmHWM polled in the tree covers those.
        "peak_rss_mb": max(usage.ru_maxrss, poller.process_hwm_kb) / 1024,
        "ru_maxrss_mb": usage.ru_maxrss / 1024,
        "peak_tree_rss_mb": poller.peak_tree_kb / 1024,
        "root_hwm_mb": poller.root_hwm_kb / 1024,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--cwd", default=None)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    result = measure(command, args.log, args.cwd)
    args.out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
