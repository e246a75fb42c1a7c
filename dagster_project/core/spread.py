"""Share a column's identifier checks with helper processes on the machine's other cores.

Checking a phone number costs ~40 µs of pure Python (phonenumbers) that holds the GIL, so a batch
of new subscribers keeps one core busy while the others idle. ``Spreader.map`` cuts the distinct
values into slices: this process works through them from the front while each helper takes them
from the back, one slice at a time. The rules are pure functions, so the result is the one a
single pass gives, in the same order.

A helper is a plain ``python -m dagster_project.core.spread`` child fed pickled slices on stdin.
``multiprocessing``'s spawn would re-run the parent's main script in the child (a user's script
that starts a sync at import time would start it again there), and fork is unsafe in a process
with threads. A helper joins only once it has imported the rules, and a helper that fails hands
its slice back: a slow or broken helper costs time, never a result.
"""

from __future__ import annotations

import os
import pickle
import queue
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, BinaryIO

SLICE_VALUES = 2_000  # about 0.1 s of phone checks; a few ms to pickle there and back
MIN_SPREAD_VALUES = 10_000  # shorter columns are checked here
READY = b"R"
READY_POLL_SECONDS = 0.02
IN_FLIGHT = 2
STALL_SECONDS = 60.0  # a slice takes ~0.1 s; a helper this late is stopped
HELPER_IMPORTS = ("dagster_project.core.identifiers",)  # imported before a helper reports ready

Rule = Callable[[Any], Any]


def apply_rule(rule: Rule, values: Sequence[Any]) -> list[Any]:
    return [rule(value) for value in values]


class HelperFailed(Exception):
    pass


class _Helper:
    """One child process and the thread that waits for it to be ready."""

    def __init__(self) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", __name__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        self.ready = threading.Event()
        self.failed = False
        self.reported = False
        threading.Thread(target=self._await_ready, daemon=True).start()

    def _await_ready(self) -> None:
        if self.process.stdout.read(1) == READY:
            self.ready.set()
        else:
            self.failed = True

    def send(self, rule: Rule, values: Sequence[Any]) -> None:
        try:
            pickle.dump((rule, values), self.process.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            self.process.stdin.flush()
        except (OSError, ValueError) as exc:  # ValueError: the pipe was closed
            raise HelperFailed(f"helper process {self.process.pid} stopped: {exc!r}") from None

    def receive(self) -> list[Any]:
        try:
            ok, result = pickle.load(self.process.stdout)
        except (OSError, EOFError, pickle.UnpicklingError) as exc:
            raise HelperFailed(f"helper process {self.process.pid} stopped: {exc!r}") from None
        if not ok:
            raise HelperFailed(f"helper process {self.process.pid}: {result}")
        return result

    def stop(self) -> None:
        try:
            self.process.stdin.close()
            self.process.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()


class Spreader:
    """Apply pure rules to long sequences with up to ``helpers`` extra processes.

    Use as a context manager: helpers start on the first long sequence and stop on exit.
    ``helpers=0`` applies every rule in this process.
    """

    def __init__(self, helpers: int, log: Callable[[str], None] = print) -> None:
        self.helpers = helpers
        self.log = log
        self.values_by_helpers = 0
        self._started: list[_Helper] = []

    def __enter__(self) -> Spreader:
        return self

    def __exit__(self, *exc: object) -> None:
        for helper in self._started:
            helper.stop()
        self._started = []

    def start(self) -> None:
        """Start the helpers now (they take a second to import), so they are ready sooner."""
        if self.helpers > 0 and not self._started:
            self._started = [_Helper() for _ in range(self.helpers)]

    def wait_ready(self, timeout: float) -> int:
        """Wait up to ``timeout`` seconds for the started helpers; return how many are ready."""
        for helper in self._started:
            helper.ready.wait(timeout)
        return sum(h.ready.is_set() and not h.failed for h in self._started)

    def map(self, rule: Rule, values: Sequence[Any]) -> list[Any]:
        """``[rule(v) for v in values]``, shared with the helpers when ``values`` is long."""
        if self.helpers <= 0 or len(values) < MIN_SPREAD_VALUES:
            return apply_rule(rule, values)
        self.start()
        slices = [list(values[i : i + SLICE_VALUES]) for i in range(0, len(values), SLICE_VALUES)]
        results: list[list[Any] | None] = [None] * len(slices)
        todo, lock = deque(range(len(slices))), threading.Lock()

        def take(from_front: bool) -> int | None:
            with lock:
                return (todo.popleft() if from_front else todo.pop()) if todo else None

        def work(helper: _Helper) -> None:
            while not helper.ready.wait(READY_POLL_SECONDS):  # joins mid-column once started
                if helper.failed or not todo:
                    return
            sent: deque[int] = deque()  # IN_FLIGHT slices queued, so the helper never idles
            try:
                while True:
                    while len(sent) < IN_FLIGHT and (i := take(from_front=False)) is not None:
                        helper.send(rule, slices[i])
                        sent.append(i)
                    if not sent:
                        return
                    i = sent.popleft()
                    results[i] = helper.receive()
                    with lock:
                        self.values_by_helpers += len(slices[i])
            except HelperFailed as exc:
                helper.failed = helper.reported = True
                with lock:
                    todo.extendleft(sent)
                self.log(f"{exc}; its share of the identifiers is checked in this process")

        for helper in self._started:
            if helper.failed and not helper.reported:
                helper.reported = True
                self.log(f"helper process {helper.process.pid} did not start; see its stderr")
        running = [h for h in self._started if not h.failed]
        threads = [threading.Thread(target=work, args=(h,), daemon=True) for h in running]
        for thread in threads:
            thread.start()
        try:
            while (i := take(from_front=True)) is not None:
                results[i] = apply_rule(rule, slices[i])
        finally:
            with lock:  # after an error here, the helpers take no more slices
                todo.clear()
            for helper, thread in zip(running, threads, strict=True):
                thread.join(STALL_SECONDS)
                if thread.is_alive():  # its pipes close with the kill: the thread hands back
                    self.log(f"helper process {helper.process.pid} stalled; stopping it")
                    helper.process.kill()
                    thread.join()
        for i in range(len(slices)):  # handed back by a helper that failed after this loop ended
            if results[i] is None:
                results[i] = apply_rule(rule, slices[i])
        return [result for part in results for result in part]


def serve(source: BinaryIO, sink: BinaryIO) -> None:
    """A helper's loop: read (rule, values), write (True, results) or (False, reason).

    Jobs are read on a thread of their own, so the parent's next job never waits behind a reply
    the parent has not read yet (both pipes full would otherwise block both processes).
    """
    jobs: queue.SimpleQueue = queue.SimpleQueue()

    def read() -> None:
        while True:
            try:
                jobs.put(pickle.load(source))
            except EOFError:
                jobs.put(None)
                return
            except Exception as exc:  # a job that cannot be read: say why, then stop
                jobs.put(exc)
                return

    threading.Thread(target=read, daemon=True).start()
    while (job := jobs.get()) is not None:
        try:
            if isinstance(job, Exception):
                raise job
            reply = (True, apply_rule(*job))
        except Exception as exc:  # reported back; the parent checks the slice itself
            reply = (False, f"{type(exc).__name__}: {exc}")
        pickle.dump(reply, sink, protocol=pickle.HIGHEST_PROTOCOL)
        sink.flush()
        if isinstance(job, Exception):
            return


if __name__ == "__main__":
    import importlib

    source, sink = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print must not corrupt the replies
    for module in HELPER_IMPORTS:
        importlib.import_module(module)
    sink.write(READY)
    sink.flush()
    serve(source, sink)
