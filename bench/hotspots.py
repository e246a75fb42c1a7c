"""Summarize a py-spy ``--format raw`` profile: where the sampled time went.

``python -m bench.hotspots PROFILE.collapsed.txt`` prints three lists: functions of
``dagster_project`` by inclusive time, the innermost ``dagster_project`` frame of each sample
(which line of our code the time is spent under), and the leaf functions (self time).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
OURS = "dagster_project/"


def _parse(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append((stack.split(";"), int(count)))
    return stacks


def _name(frame: str, with_line: bool = False) -> str:
    match = FRAME.match(frame)
    if not match:
        return frame
    file = match["file"]
    if OURS in file:
        file = file[file.index(OURS) :]
    elif "site-packages/" in file:
        file = file.split("site-packages/", 1)[1]
    line = f":{match['line']}" if with_line and match["line"] else ""
    return f"{match['func']} ({file}{line})"


def summarize(path: Path, top: int = 15) -> str:
    stacks = _parse(path)
    total = sum(count for _, count in stacks) or 1
    inclusive: Counter[str] = Counter()
    innermost: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    for frames, count in stacks:
        ours = [f for f in frames if OURS in f]
        for name in {_name(f) for f in ours}:
            inclusive[name] += count
        innermost[_name(ours[-1], with_line=True) if ours else "(outside dagster_project)"] += count
        leaf[_name(frames[-1])] += count

    def block(title: str, counter: Counter[str]) -> list[str]:
        lines = [f"{title} (share of {total:,} samples)"]
        lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in counter.most_common(top)]
        return lines

    return "\n".join(
        [
            *block("dagster_project functions, inclusive", inclusive),
            "",
            *block("innermost dagster_project frame of each sample", innermost),
            "",
            *block("leaf functions (self time)", leaf),
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args(argv)
    print(summarize(args.profile, args.top))


if __name__ == "__main__":
    main()
