"""bench/_write_steps.py refuses a figure unless every message it wrote was read back, once."""

from __future__ import annotations

import pytest

from bench._write_steps import check_read_back
from bench.verify import Refused

WRITTEN = [("audit", b"0:xx"), ("out", b"1:xx"), ("out", b"2:xx")]


def test_exactly_the_messages_written_pass() -> None:
    check_read_back("tansu linger 0", WRITTEN, list(reversed(WRITTEN)))


@pytest.mark.parametrize(
    "found",
    [
        WRITTEN[:2],  # one lost
        [*WRITTEN[:2], WRITTEN[0]],  # one lost, another twice: as many as written
        [*WRITTEN, ("out", b"3:xx")],  # one that was never written (an aborted transaction)
    ],
    ids=["lost", "lost-and-duplicated", "not-written"],
)
def test_a_lost_duplicated_or_foreign_message_refuses_the_figure(
    found: list[tuple[str, bytes]],
) -> None:
    with pytest.raises(Refused, match="tansu linger 0: 3 messages written"):
        check_read_back("tansu linger 0", WRITTEN, found)
