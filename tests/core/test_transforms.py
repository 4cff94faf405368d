"""Share specifications and the generalisers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.core.covenant.transforms import TransformSpecError, generaliser, parse_share


@pytest.mark.parametrize(
    ("text", "action", "method"),
    [
        ("keep", "keep", None),
        ("pseudonymise", "pseudonymise", None),
        ("generalise:postcode4", "generalise", "postcode4"),
        ("generalise:week", "generalise", "week"),
        ("generalise:band:0.1", "generalise", "band"),
    ],
)
def test_parse_share(text, action, method):
    spec = parse_share(text)
    assert (spec.action, spec.method) == (action, method)


@pytest.mark.parametrize(
    "text",
    ["drop", "generalise:", "generalise:band", "generalise:band:0", "generalise:band:-1", 3, None],
)
def test_bad_share_specs_are_refused_with_the_accepted_forms(text):
    with pytest.raises(TransformSpecError, match=r"keep|band|string"):
        parse_share(text)


def apply(text: str, value: object) -> object:
    return generaliser(parse_share(text))(value)


def test_postcode4_of_an_address():
    assert apply("generalise:postcode4", "1811AB 12A") == "1811"


@pytest.mark.parametrize(
    ("text", "value", "expected"),
    [
        ("generalise:day", "2026-11-22", "2026-11-22"),
        # 23:30 UTC on 22 November is already 23 November in the Netherlands
        ("generalise:day", "2026-11-22T23:30:00Z", "2026-11-23"),
        ("generalise:week", "2026-11-22", "2026-W47"),
        ("generalise:week", "2027-01-01", "2026-W53"),
        ("generalise:month", "2026-11-22T10:00:00+01:00", "2026-11"),
        ("generalise:year", "2026-11-22", "2026"),
        ("generalise:hour", "2026-11-22T10:45:12Z", "2026-11-22T11:00:00+01:00"),
    ],
)
def test_time_generalisers_use_dutch_calendar(text, value, expected):
    assert apply(text, value) == expected


def test_time_generaliser_applies_to_each_member_of_a_period():
    period = {"start": "2026-10-01", "end": "2026-10-31"}
    assert apply("generalise:week", period) == {"start": "2026-W40", "end": "2026-W44"}


@pytest.mark.parametrize(
    ("width", "value", "expected"),
    [
        ("0.1", 0.87, "[0.8,0.9)"),
        ("0.1", 0.9, "[0.9,1)"),
        ("0.05", 0.93, "[0.9,0.95)"),
        ("500", 1250, "[1000,1500)"),
        ("1", -0.5, "[-1,0)"),
        ("1", 0, "[0,1)"),
    ],
)
def test_band(width, value, expected):
    assert apply(f"generalise:band:{width}", value) == expected


@pytest.mark.parametrize("bad", [True, "0.5", float("nan"), float("inf")])
def test_band_refuses_non_numbers(bad):
    with pytest.raises(TypeError):
        apply("generalise:band:0.1", bad)


@given(
    st.floats(min_value=-1e9, max_value=1e9, allow_nan=False),
    st.sampled_from(["0.1", "0.05", "1", "250"]),
)
def test_band_contains_its_value(value, width):
    text = apply(f"generalise:band:{width}", value)
    assert isinstance(text, str)
    low, high = (float(x) for x in text.strip("[)").split(","))
    assert low <= value < high or abs(value - high) < 1e-9 * max(1, abs(value))
