"""A bar chart as plain numbers for an inline SVG: no JavaScript, no image library.

The template draws one ``<rect>`` per bar with a ``<title>`` (read by screen readers and
shown on hover); the same numbers are in a table next to it.
"""

from __future__ import annotations

from dataclasses import dataclass

WIDTH = 640
BAR_HEIGHT = 22
GAP = 6
LABEL_WIDTH = 200
COUNT_WIDTH = 60


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    count: int
    y: int
    width: int


@dataclass(frozen=True, slots=True)
class Chart:
    bars: list[Bar]
    width: int
    height: int
    label_width: int
    bar_height: int


def bar_chart(items: list[tuple[str, int]]) -> Chart:
    """Horizontal bars, scaled so the largest count fills the drawing width."""
    largest = max((count for _, count in items), default=0)
    room = WIDTH - LABEL_WIDTH - COUNT_WIDTH
    bars = [
        Bar(
            label,
            count,
            index * (BAR_HEIGHT + GAP),
            round(room * count / largest) if largest else 0,
        )
        for index, (label, count) in enumerate(items)
    ]
    height = max(len(items) * (BAR_HEIGHT + GAP), BAR_HEIGHT)
    return Chart(bars, WIDTH, height, LABEL_WIDTH, BAR_HEIGHT)
