"""Showing the progress of long work: a Rich bar on a terminal, plain lines elsewhere.

On a terminal (stderr) the bar shows what is being done, the count done of the total, and the
time elapsed and left; it vanishes when the work ends. When stderr is not a terminal (a pipe,
a log file, a test) nothing is shown for work that ends within ``every_s`` seconds; longer
work gets one plain line every ``every_s`` seconds with the count and the time left, and one
at the end. Services get the returned callback (:class:`services.core.progress.Progress`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.progress import Progress as Bar
from rich.text import Text

from services.core.progress import Progress

PLAIN_EVERY_S = 10.0


@contextmanager
def progress(
    what: str,
    total: int | None = None,
    *,
    console: Console | None = None,
    clock: Callable[[], float] = time.monotonic,
    every_s: float = PLAIN_EVERY_S,
) -> Iterator[Progress]:
    """A :class:`Progress` for ``what`` (e.g. "verifying audit records") while the block runs."""
    out = console if console is not None else Console(stderr=True, highlight=False)
    if out.is_terminal:
        with Bar(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            TimeLeft(),
            console=out,
            transient=True,
            get_time=clock,
        ) as bar:
            task = bar.add_task(what, total=total)

            def advance(done: int, known: int | None = None, /) -> None:
                if known is not None:
                    bar.update(task, completed=done, total=known)
                else:
                    bar.update(task, completed=done)

            yield advance
        return
    lines = PlainLines(out, what, total, clock, every_s)
    yield lines
    lines.finish()


def time_left(done: float, total: float | None, elapsed: float | None) -> str:
    """``, about N s left`` at the pace so far (nothing until there is a pace)."""
    if not total or not done or not elapsed or elapsed <= 0:
        return ""
    return f", about {(total - done) * elapsed / done:.0f} s left"


class TimeLeft(ProgressColumn):
    """The time left at the average pace since the start (Rich's own column needs several
    updates before it says anything, and swings with the last ones)."""

    def render(self, task: Task) -> Text:
        return Text(time_left(task.completed, task.total, task.elapsed).removeprefix(", "))


class PlainLines:
    """A :class:`Progress` for output that is not a terminal: a line every ``every_s``."""

    def __init__(
        self,
        out: Console,
        what: str,
        total: int | None,
        clock: Callable[[], float],
        every_s: float,
    ) -> None:
        self._out = out
        self._what = what
        self._total = total
        self._clock = clock
        self._every = every_s
        self._started = clock()
        self._next = self._started + every_s
        self._done = 0
        self._shown = False

    def __call__(self, done: int, total: int | None = None, /) -> None:
        self._done = done
        if total is not None:
            self._total = total
        now = self._clock()
        if now < self._next:
            return
        self._next = now + self._every
        self._shown = True
        self._out.print(f"{self._what}: {self._count()}{self._left(now)}", markup=False)

    def finish(self) -> None:
        """The closing line, if any line was shown (short work stays silent)."""
        if self._shown:
            took = self._clock() - self._started
            self._out.print(f"{self._what}: {self._done:,} done in {took:.0f} s", markup=False)

    def _count(self) -> str:
        if not self._total:
            return f"{self._done:,}"
        return f"{self._done:,} of {self._total:,} ({100 * self._done // self._total}%)"

    def _left(self, now: float) -> str:
        return time_left(self._done, self._total, now - self._started)
