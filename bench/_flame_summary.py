"""Summarise a py-spy collapsed-stack file (``py-spy record -f raw``) as µs of CPU per signal.

Samples of waiting threads are dropped (:data:`IDLE_LEAVES`). Every sample counts once for each distinct function on its stack (inclusive time); the
samples are scaled so that all of them together make the CPU per signal measured for the
phase (``--cpu-us``, from bench/_profile_paths.py). ``--self`` counts only the leaf frames.

    .venv/bin/python bench/_flame_summary.py out/profile/noida-transactional-router.txt \
        --cpu-us 722 [--top 40] [--self] [--match services/]
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

IDLE_LEAVES = (
    "_worker (concurrent/futures/thread.py:81)",  # a pool thread waiting for work
    "_Spawner._serve (services/broker/process.py",  # the broker-spawner thread, waiting
    "select (selectors.py",  # the event loop, waiting
    "Condition.wait (threading.py",
)
"""Leaf frames of threads that wait: py-spy's idle detection does not see these as idle on
this machine, so their samples are dropped before scaling."""

FRAME = re.compile(r"^(?P<name>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def frames(stack: str) -> list[str]:
    """``function (file)`` of each frame, line numbers dropped (one entry per function)."""
    out = []
    for frame in stack.split(";"):
        match = FRAME.match(frame.strip())
        out.append(f"{match['name']} ({match['file']})" if match else frame.strip())
    return out


def summarise(text: str, *, leaf_only: bool) -> tuple[Counter[str], int]:
    counts: Counter[str] = Counter()
    total = 0
    for line in text.splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        samples = int(n)
        leaf = stack.rsplit(";", 1)[-1]
        if any(leaf.startswith(idle) for idle in IDLE_LEAVES):
            continue
        total += samples
        names = frames(stack)
        for name in [names[-1]] if leaf_only else set(names):
            counts[name] += samples
    return counts, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("file", type=Path)
    parser.add_argument("--cpu-us", type=float, required=True, help="CPU µs per signal")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--self", dest="leaf_only", action="store_true")
    parser.add_argument("--match", default="", help="only functions whose entry contains this")
    args = parser.parse_args()
    counts, total = summarise(args.file.read_text(encoding="utf-8"), leaf_only=args.leaf_only)
    scale = args.cpu_us / max(total, 1)
    print(f"{total} samples = {args.cpu_us:.0f} µs/signal")
    shown = [(name, n) for name, n in counts.most_common() if args.match in name]
    for name, n in shown[: args.top]:
        print(f"{n * scale:8.1f} µs  {n / max(total, 1):6.1%}  {name}")


if __name__ == "__main__":
    main()
