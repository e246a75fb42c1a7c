"""Share the validation's pure-Python work with helper processes on the machine's other cores.

Two costs hold the GIL and keep one core busy while the others idle: checking phone numbers
(~40 µs each, phonenumbers) and importing Great Expectations (~3 s). ``Spreader.map`` cuts a
column's distinct values into slices that this process works through from the front while each
helper takes them from the back; ``Offload`` runs calls (the GX suite) in a helper, in order,
while this process goes on. Both give exactly what running here would give.

A helper is a plain ``python -m dagster_project.core.spread`` child fed pickled jobs on stdin.
``multiprocessing``'s spawn would re-run the parent's main script in the child (a user's script
that starts a sync at import time would start it again there), and fork is unsafe in a process
with threads. A helper that fails or stalls hands its work back: it costs time, never a result.
"""

from __future__ import annotations

import importlib
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
IN_FLIGHT = 2  # slices queued per helper, so it never idles while a reply travels
STALL_SECONDS = 60.0  # a slice takes ~0.1 s and a GX bucket ~1 s; a helper this late is stopped
READY = b"R"
PHONE_IMPORTS = ("dagster_project.core.identifiers",)

Rule = Callable[[Any], Any]


def apply_rule(rule: Rule, values: Sequence[Any]) -> list[Any]:
    return [rule(value) for value in values]


class HelperFailed(Exception):
    pass


class _Helper:
    """One child process; a thread reads its replies into a queue."""

    def __init__(self, warm_up: Sequence[str]) -> None:
        # the parent's import path, so the helper finds the same code ('' is the working dir)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p or os.getcwd() for p in sys.path)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", __name__, *warm_up],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        self.ready = threading.Event()
        self.failed = False
        self.reported = False
        self._replies: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        stdout = self.process.stdout
        try:
            if stdout.read(1) != READY:
                raise EOFError("it exited while starting")
            self.ready.set()
            while True:
                self._replies.put(pickle.load(stdout))
        except Exception as exc:  # EOF, a broken pipe or a torn reply: the helper is gone
            self.failed = True
            self._replies.put(HelperFailed(f"helper process {self.process.pid} stopped: {exc!r}"))
            self.ready.set()  # nobody waits for a helper that will never be ready

    def send(self, function: Callable, *args: Any) -> None:
        try:
            pickle.dump((function, args), self.process.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            self.process.stdin.flush()
        except (OSError, ValueError) as exc:  # ValueError: the pipe was closed
            raise HelperFailed(f"helper process {self.process.pid} stopped: {exc!r}") from None

    def receive(self) -> Any:
        try:
            reply = self._replies.get(timeout=STALL_SECONDS)
        except queue.Empty:
            self.process.kill()
            raise HelperFailed(
                f"helper process {self.process.pid} stalled ({STALL_SECONDS:.0f}s without a "
                "reply); stopped it"
            ) from None
        if isinstance(reply, HelperFailed):
            self._replies.put(reply)  # every later receive fails the same way
            raise reply
        ok, result = reply
        if not ok:
            raise HelperFailed(f"helper process {self.process.pid}: {result}")
        return result

    def report(self, log: Callable[[str], None], message: str) -> None:
        """Log ``message`` unless this helper's trouble was already logged (once per run)."""
        if not self.reported:
            self.reported = True
            log(message)

    def stop(self) -> None:
        try:
            self.process.stdin.close()
            self.process.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()


class Spreader:
    """Apply pure rules to long sequences with up to ``helpers`` extra processes.

    Use as a context manager: helpers start on the first long sequence (or ``start``) and stop
    on exit. ``helpers=0`` applies every rule in this process.
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
        """Start the helpers now (they take half a second to import), so they are ready sooner."""
        if self.helpers > 0 and not self._started:
            try:
                self._started = [_Helper(PHONE_IMPORTS) for _ in range(self.helpers)]
            except OSError as exc:
                self.helpers = 0
                self.log(f"could not start a helper process ({exc}); checking phones here")

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
            while not helper.ready.wait(0.02):  # joins mid-column once it has started
                if not todo:
                    return
            sent: deque[int] = deque()
            try:
                while True:
                    while len(sent) < IN_FLIGHT and (i := take(from_front=False)) is not None:
                        helper.send(apply_rule, rule, slices[i])
                        sent.append(i)
                    if not sent:
                        return
                    i = sent.popleft()
                    results[i] = helper.receive()
                    with lock:
                        self.values_by_helpers += len(slices[i])
            except HelperFailed as exc:
                helper.failed = True
                with lock:
                    todo.extendleft(sent)
                helper.report(self.log, f"{exc}; its share is checked in this process")

        for helper in self._started:
            if helper.failed:
                helper.report(
                    self.log,
                    f"helper process {helper.process.pid} is not running (it wrote why to the "
                    "run's stderr); phones are checked in this process",
                )
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
            for thread in threads:
                thread.join()
        for i, result in enumerate(results):  # handed back after this process had finished
            if result is None:
                results[i] = apply_rule(rule, slices[i])
        return [result for part in results for result in part]


class Offload:
    """Calls run in one helper process, in the order submitted, while this process goes on.

    The helper starts with ``start`` (calls submitted before run here at once); ``results``
    returns the values in the order submitted. Calls the helper could not run (it failed to
    start, died or stalled) run here instead. ``enabled=False`` runs every call here.
    """

    def __init__(
        self, warm_up: Sequence[str], enabled: bool, log: Callable[[str], None] = print
    ) -> None:
        self.warm_up = tuple(warm_up)
        self.enabled = enabled
        self.log = log
        self._helper: _Helper | None = None
        self._pending: deque[tuple[bool, Callable, tuple]] = deque()
        self._values: list[Any] = []

    def __enter__(self) -> Offload:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._helper is not None:
            self._helper.stop()
            self._helper = None

    def start(self) -> None:
        if self.enabled and self._helper is None:
            try:
                self._helper = _Helper(self.warm_up)
            except OSError as exc:
                self.enabled = False
                self.log(f"could not start a helper process ({exc}); running calls here")

    def submit(self, function: Callable, *args: Any) -> None:
        """Send the call to the helper if one was started; otherwise run it here, now.

        At most ``IN_FLIGHT`` calls wait for the helper: their arguments (GX: a bucket's rows)
        are kept here until their result is in, and memory must not grow with the batch.
        """
        sent = False
        if self._helper is not None and not self._helper.failed:
            try:
                self._helper.send(function, *args)
                sent = True
            except HelperFailed as exc:
                self._fail(exc)
        self._pending.append((sent, function, args))
        while len(self._pending) > (IN_FLIGHT if sent else 0):
            self._resolve_oldest()

    def results(self) -> list[Any]:
        """The values of every call submitted, in order (waiting for the helper's last ones)."""
        while self._pending:
            self._resolve_oldest()
        values, self._values = self._values, []
        return values

    def _resolve_oldest(self) -> None:
        sent, function, args = self._pending.popleft()
        if sent:  # replies that came before a failure still count
            try:
                self._values.append(self._helper.receive())
                return
            except HelperFailed as exc:
                self._fail(exc)
        self._values.append(function(*args))

    def _fail(self, exc: HelperFailed) -> None:
        self._helper.failed = True
        self._helper.process.kill()
        self._helper.report(self.log, f"{exc}; the rest runs in this process")


def serve(source: BinaryIO, sink: BinaryIO, warm_up: Sequence[str]) -> None:
    """A helper's life: import what the jobs need, then answer each (function, args) with
    (True, value) or (False, reason).

    Jobs are read on a thread of their own from the start, so the parent's sends never wait on
    a slow import, nor behind a reply the parent has not read yet.
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
    for name in warm_up:  # "module" or "module:function"
        module, _, function = name.partition(":")
        imported = importlib.import_module(module)
        if function:
            getattr(imported, function)()
    sink.write(READY)
    sink.flush()
    while (job := jobs.get()) is not None:
        try:
            if isinstance(job, Exception):
                raise job
            function, args = job
            reply = (True, function(*args))
        except Exception as exc:  # reported back; the parent runs the job itself
            reply = (False, f"{type(exc).__name__}: {exc}")
        pickle.dump(reply, sink, protocol=pickle.HIGHEST_PROTOCOL)
        sink.flush()
        if isinstance(job, Exception):
            return


if __name__ == "__main__":
    source, sink = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print must not corrupt the replies
    serve(source, sink, sys.argv[1:])
