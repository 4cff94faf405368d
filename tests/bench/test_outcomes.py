"""bench/outcomes.py: the figure carries the counts it checked, and a wrong match refuses it."""

from __future__ import annotations

import dataclasses

import pytest

from bench import outcomes
from bench.verify import Refused

pytestmark = [pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def timed() -> outcomes.Timed:
    layout = outcomes.Layout(2_000, 800)
    return outcomes.run(layout, 20, outcomes.policy())


def test_a_good_run_checks_every_outcome_and_match_against_the_placement(
    timed: outcomes.Timed,
) -> None:
    checked = timed.checked(20)
    assert checked.outcomes == 20
    assert checked.matches == timed.placed > 0
    assert checked.audit_records == timed.placed  # every pair decided once
    assert checked.as_json()["deliveries"] == timed.delivered > 0


def test_matches_that_are_not_the_placement_are_refused(timed: outcomes.Timed) -> None:
    doubled = dataclasses.replace(timed, matches=timed.matches + 1)
    with pytest.raises(Refused, match=r"matches: expected [\d,]+, found [\d,]+"):
        doubled.checked(20)


def test_an_outcome_matched_wrongly_is_refused(timed: outcomes.Timed) -> None:
    wrong = dataclasses.replace(timed, wrong=["x: matched 2 signals"], right=timed.right - 1)
    with pytest.raises(Refused, match="wrong results"):
        wrong.checked(20)


def test_a_run_that_returned_nothing_is_refused(timed: outcomes.Timed) -> None:
    with pytest.raises(Refused, match="no outcome was returned"):
        dataclasses.replace(timed, delivered=0).checked(20)


def test_a_pair_decided_twice_is_refused(timed: outcomes.Timed) -> None:
    with pytest.raises(Refused, match="audit records"):
        dataclasses.replace(timed, decisions=timed.decisions + 1).checked(20)
