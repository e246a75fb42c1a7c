"""Push progress lines: paced by time, never silent about the last chunk."""

from __future__ import annotations

from dagster_project.core.pacing import Progress
from dagster_project.core.push_types import PushReport


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_lines_come_at_most_every_interval_and_for_the_last_chunk():
    clock, lines = Clock(), []
    report = PushReport(tokens_pending=5_000)
    progress = Progress(5, report, lines.append, every=30.0, clock=clock)
    for done, seconds in [(1, 10), (2, 29.9), (3, 30.1), (4, 59), (5, 60)]:
        clock.now = 100.0 + seconds
        report.tokens_pushed = done * 1_000
        progress(done)
    assert lines == [
        "chunk 3/5 done: 3,000/5,000 tokens accepted",
        "chunk 5/5 done: 5,000/5,000 tokens accepted",
    ]


def test_a_push_of_seconds_logs_only_its_final_line():
    clock, lines = Clock(), []
    report = PushReport(tokens_pending=89_000, tokens_pushed=89_000)
    progress = Progress(89, report, lines.append, clock=clock)
    for done in range(1, 90):
        clock.now += 0.1
        progress(done)
    assert lines == ["chunk 89/89 done: 89,000/89,000 tokens accepted"]
