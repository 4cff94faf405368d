"""How far long work has come, told to whoever asked: a callback the caller passes in.

Services that take long (verifying or exporting the audit log, a purge, a replay, generating
demo traffic) accept a :class:`Progress` and call it now and then; they never know whether a
progress bar, a log line or nothing shows it (``services/cli/progress.py`` decides that).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol, TypeVar

_T = TypeVar("_T")

EVERY = 10_000
"""Items between two calls, for work that goes item by item (cheap enough to not matter)."""


class Progress(Protocol):
    """``done`` items so far, of ``total`` when the service knows it (else the caller may)."""

    def __call__(self, done: int, total: int | None = None, /) -> None: ...


def silent(done: int, total: int | None = None, /) -> None:
    """A :class:`Progress` that shows nothing."""


def told(items: Iterable[_T], progress: Progress, *, every: int = EVERY) -> Iterator[_T]:
    """``items`` as they are, calling ``progress`` with the count every ``every`` and at the
    end (so a loop over them reports without a line of its own)."""
    count = 0
    for item in items:
        yield item
        count += 1
        if count % every == 0:
            progress(count)
    progress(count)
