"""Case files: bundling by the recipient's own pseudonyms within one covenant, a four-eyes
re-identification started from the case, and an outcome that the indicators count."""

from __future__ import annotations

import pytest

from services.core.pseudonyms import Domain, Pseudonymiser
from services.outcomes.batch import OutcomeStep
from services.outcomes.batch import Record as OutcomeRecord
from services.outcomes.indicators import outcomes_by_signal
from services.reid.model import ReidError
from services.riec.model import CaseState, ItemState, NotFoundError, QueueFilters, RiecError
from tests.riec.helpers import DRUGS, RIEC, Site, user

ALERT = "hub.stacked_location_alert.v1"


def alert_with_company(site: Site):
    """An alert and another item of the same covenant carrying one of its pseudonyms."""
    ana = user(site, "ana")
    everything = site.workplace.queue(ana, QueueFilters(), limit=10_000)
    for alert in (i for i in everything if i.alert):
        for other in everything:
            if (
                other.id != alert.id
                and other.covenant_id == alert.covenant_id
                and set(other.pseudonyms) & set(alert.pseudonyms)
            ):
                return alert, other
    raise AssertionError("the demo feed has an alert sharing a pseudonym with a signal")


def test_bundling_goes_by_the_recipients_own_pseudonyms(site: Site):
    ana = user(site, "ana")
    alert, other = alert_with_company(site)
    case = site.cases.open(ana, alert.id, "Stacked location, Kennemerland")
    candidates = site.cases.same_subject(ana, case.id)
    assert other.id in {i.id for i in candidates}
    assert all(set(i.pseudonyms) & set(alert.pseudonyms) for i in candidates)
    added = site.cases.add(ana, case.id, other.id)
    assert added.state is ItemState.CASE and added.case_id == case.id
    assert other.id not in {i.id for i in site.cases.same_subject(ana, case.id)}
    assert {i.id for i in site.cases.items(ana, case.id)} == {alert.id, other.id}


def test_an_item_of_another_covenant_does_not_join(site: Site):
    ana = user(site, "ana")
    everything = site.workplace.queue(ana, QueueFilters(), limit=10_000)
    first = next(i for i in everything if i.covenant_id == DRUGS)
    foreign = next(i for i in everything if i.covenant_id != DRUGS)
    case = site.cases.open(ana, first.id, "purpose limitation")
    with pytest.raises(RiecError, match="purpose"):
        site.cases.add(ana, case.id, foreign.id)
    assert site.workplace.item(ana, foreign.id).state is ItemState.NEW


def test_reidentification_from_a_case_is_four_eyes_with_the_case_as_purpose(site: Site):
    ana, bo, officer = user(site, "ana"), user(site, "bo"), user(site, "drugs-officer")
    alert = site.workplace.queue(ana, QueueFilters(signal_type=ALERT), limit=1)[0]
    case = site.cases.open(ana, alert.id, "verify before a site visit")
    pseudonym = alert.pseudonyms[0]
    made = site.cases.reidentify(ana, case.id, pseudonym, "site visit planned")
    assert made.case_ref == case.id and made.purpose.startswith(f"case {case.id}")
    assert made.requester == "ana"
    with pytest.raises(ReidError, match=r"four eyes"):
        site.reid.approve(made.id, ana)
    with pytest.raises(ReidError, match="may not approve"):
        site.reid.approve(made.id, bo)  # an analyst is no approver
    site.reid.approve(made.id, officer)
    revealed = site.reid.reveal(made.id, ana)
    expected = Pseudonymiser(site.keys).reidentify(Domain(DRUGS, RIEC, reversible=True), pseudonym)
    assert (revealed.kind, revealed.value) == expected
    assert [e.step for e in site.cases.entries(case.id)][-1] == "reid"


def test_only_pseudonyms_of_the_case_can_be_reidentified(site: Site):
    ana = user(site, "ana")
    alert, _ = alert_with_company(site)
    case = site.cases.open(ana, alert.id, "only what the case holds")
    outside = next(
        p
        for i in site.workplace.queue(ana, QueueFilters(), limit=10_000)
        if i.covenant_id == DRUGS
        for p in i.pseudonyms
        if p not in alert.pseudonyms
    )
    with pytest.raises(RiecError, match="not one of case"):
        site.cases.reidentify(ana, case.id, outside, "fishing")
    with pytest.raises(NotFoundError):
        site.cases.reidentify(user(site, "other-riec"), case.id, alert.pseudonyms[0], "x")
    assert site.reid.listing() == []


def test_an_outcome_closes_the_case_and_the_indicators_count_it(site: Site):
    ana = user(site, "ana")
    alert = site.workplace.queue(ana, QueueFilters(signal_type=ALERT), limit=1)[0]
    assert site.workplace.locations(alert.id), "an alert names a premises the hub can locate"
    _index_the_signals(site)
    before = outcomes_by_signal(site.outcomes)
    case = site.cases.open(ana, alert.id, "cleared by the police")
    closed = site.cases.outcome(ana, case.id, "finding", "cannabis grow dismantled, 400 plants")
    assert closed.state is CaseState.CLOSED and closed.outcome == "finding"
    after = outcomes_by_signal(site.outcomes)
    answered = set(after) - set(before)
    assert answered, "the signals at the case's location are now followed by a finding"
    assert all(any(c == "finding" for _, c in after[k]) for k in answered)
    with pytest.raises(RiecError, match="closed"):
        site.cases.note(ana, case.id, "too late")
    stored = site.workplace.audit.get(site.cases.entries(case.id)[-1].record_id)
    assert stored is not None and stored["action"] == "riec-outcome"
    assert set(stored["subjects"].values()) == set(site.workplace.locations(alert.id))


def _index_the_signals(site: Site) -> None:
    """The demo signals in the outcome index, as the outcomes worker keeps them."""
    from datetime import UTC, datetime

    import orjson

    from services.config import Paths, load_policy
    from services.demo.generator import generate
    from tests.stacking.helpers import NOW

    paths = Paths.from_env({})
    pseudonymiser = Pseudonymiser(site.keys)
    loaded = load_policy(
        list(paths.covenants), paths.schemas, paths.reference, pseudonymiser,
        today=NOW.date(), demo=True,
    )  # fmt: skip
    assert loaded.policy is not None
    traffic = generate(900, seed=7, start=datetime(2026, 8, 1, tzinfo=UTC), days=60)
    step = OutcomeStep.build(loaded.registry, loaded.policy, pseudonymiser)
    records = [OutcomeRecord("", orjson.dumps(s)) for s in traffic.signals]
    site.outcomes.write(step.extract(records, NOW, at_signal_time=True).entries)


def test_an_outcome_without_a_premises_closes_the_case_and_indexes_nothing(site: Site):
    ana = user(site, "ana")
    item = next(
        i
        for i in site.workplace.queue(ana, QueueFilters(), limit=10_000)
        if not site.workplace.locations(i.id)
    )
    case = site.cases.open(ana, item.id, "a tip without an address")
    closed = site.cases.outcome(ana, case.id, "no-finding", "nothing found at the farm")
    assert closed.state is CaseState.CLOSED
    assert [o.signal_id for o in site.outcomes.all_outcomes()] == []


def test_two_outcomes_at_once_record_one(site: Site, monkeypatch: pytest.MonkeyPatch):
    # two analysts close the same case at the same moment: both read it open, one UPDATE wins;
    # the other must not add a second outcome (nor a second finding to the indicators)
    ana = user(site, "ana")
    alert = site.workplace.queue(ana, QueueFilters(signal_type=ALERT), limit=1)[0]
    case = site.cases.open(ana, alert.id, "raced")
    stale = site.cases.get(ana, case.id)
    site.cases.outcome(ana, case.id, "finding", "first")
    monkeypatch.setattr(site.cases, "_open_case", lambda _user, _case_id: stale)
    with pytest.raises(RiecError, match="changed meanwhile"):
        site.cases.outcome(ana, case.id, "no-finding", "second")
    assert [e.step for e in site.cases.entries(case.id)].count("outcome") == 1
    assert site.cases.get(ana, case.id).outcome == "finding"


def test_a_request_from_a_case_is_spent_once_the_case_is_closed_or_purged(site: Site):
    """The case is the purpose: once its outcome is recorded (or it is purged), the value
    behind its pseudonym is no longer for anything — not approved, not revealed, through
    the workplace's flow or ``schakel reid`` alike (a workflow the case files never saw)."""
    from services.reid.workflow import Reidentification
    from services.riec.retention import purge
    from tests.stacking.helpers import NOW

    ana, officer = user(site, "ana"), user(site, "drugs-officer")
    alerts = site.workplace.queue(ana, QueueFilters(signal_type=ALERT), limit=2)
    closed = site.cases.open(ana, alerts[0].id, "closed before the reveal")
    approved = site.cases.reidentify(ana, closed.id, alerts[0].pseudonyms[0], "site visit")
    site.reid.approve(approved.id, officer)
    waiting = site.cases.reidentify(ana, closed.id, alerts[0].pseudonyms[0], "another look")
    site.cases.outcome(ana, closed.id, "no-finding", "nothing there")
    cli = Reidentification(
        site.engine, site.reid.audit, Pseudonymiser(site.keys), site.loaded.policy.covenants,
        clock=lambda: NOW,
    )  # fmt: skip  # as `schakel reid show` builds it
    for flow in (site.reid, cli):
        with pytest.raises(ReidError, match=f"case {closed.id} it was filed from is closed"):
            flow.reveal(approved.id, ana)
        with pytest.raises(ReidError, match="purpose is over"):
            flow.approve(waiting.id, officer)
    purged = site.cases.open(ana, alerts[1].id, "purged before the reveal")
    late = site.cases.reidentify(ana, purged.id, alerts[1].pseudonyms[0], "site visit")
    site.reid.approve(late.id, officer)
    purge(site.workplace, purged.keep_until.replace(year=purged.keep_until.year + 1))
    with pytest.raises(ReidError, match="is purged"):
        site.reid.reveal(late.id, ana)
