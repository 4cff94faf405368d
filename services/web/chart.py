"""A bar chart as plain numbers for an inline SVG: no JavaScript, no image library.

The template draws one ``<rect>`` per bar with a ``<title>`` (read by screen readers and
shown on hover); the same numbers are in a table next to it.
"""

from __future__ import annotations

from dataclasses import dataclass

WIDTH = 720
BAR_HEIGHT = 22
GAP = 6
LABEL_WIDTH = 200
"""Room for the labels at least; more for longer labels, up to ``MAX_LABEL_CHARS``."""
MAX_LABEL_CHARS = 44
CHAR_WIDTH = 7
"""Width of one label character at the chart's 12 px font, rounded up."""
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
    label_chars: int
    """Labels longer than this are cut short (their full text is in the bar's title)."""


def bar_chart(items: list[tuple[str, int]]) -> Chart:
    """Horizontal bars, scaled so the largest count fills the drawing width."""
    largest = max((count for _, count in items), default=0)
    longest = min(max((len(label) for label, _ in items), default=0), MAX_LABEL_CHARS)
    label_width = max(LABEL_WIDTH, longest * CHAR_WIDTH + 10)
    room = WIDTH - label_width - COUNT_WIDTH
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
    return Chart(bars, WIDTH, height, label_width, BAR_HEIGHT, MAX_LABEL_CHARS)
