"""Hand-over: a case offered to a partner's own process is a signal under a covenant rule —
decided by the same pipeline as every signal, published only when a rule delivers it, never
showing the analyst the value behind the pseudonym, audited."""

from __future__ import annotations

import orjson
import pytest

from services.core import records
from services.core.coverage.facts import fact_of
from services.core.identifiers import normalise
from services.core.outcomes.extract import Extractor
from services.core.pipeline import process
from services.core.pseudonyms import Domain, Pseudonymiser
from services.riec.model import Item, NotFoundError, QueueFilters, RiecError
from services.router.topics import signals_topic
from tests.riec.helpers import DRUGS, RIEC, Site, user
from tests.stacking.helpers import NOW

MAYORS = {"GM0361": "gemeente-alkmaar", "GM0479": "gemeente-zaanstad", "GM0392": "gemeente-haarlem"}


def address_item(site: Site, *, mayor: bool) -> tuple[Item, str]:
    """An item with an address pseudonym, in a municipality with (or without) a 13b rule."""
    for item in site.workplace.queue(user(site, "ana"), QueueFilters(), limit=10_000):
        pseudonym = item.message["data"].get("address")
        if (
            item.covenant_id == DRUGS
            and isinstance(pseudonym, str)
            and pseudonym.startswith("r")
            and (item.municipality in MAYORS) is mayor
            and item.municipality is not None
        ):
            return item, pseudonym
    raise AssertionError("the demo feed has such an item")


def test_a_13b_hand_over_reaches_the_mayor_under_the_rule(site: Site):
    ana = user(site, "ana")
    item, pseudonym = address_item(site, mayor=True)
    case = site.cases.open(ana, item.id, "closure procedure")
    sent = site.cases.hand_over(ana, case.id, pseudonym, "closure_13b")
    assert sent.recipients == (MAYORS[item.municipality],)
    assert sent.rules == (f"handover-13b-to-mayor-{MAYORS[item.municipality].split('-')[1]}",)
    [(source, raw)] = site.published
    assert source == RIEC and signals_topic(source) == "signals.riec-nh"
    # what the router does with it: the same pipeline, the mayor gets the address (13b)
    decided = process(raw, site.loaded.registry, site.loaded.policy, NOW)
    delivered = [d for d in decided.decisions if d.delivered]
    assert [d.recipient for d in delivered] == [MAYORS[item.municipality]]
    message = records.feed_message(delivered[0])
    _, value = Pseudonymiser(site.keys).reidentify(Domain(DRUGS, RIEC, reversible=True), pseudonym)
    assert message["data"]["address"] == value
    assert message["data"]["case"] == case.id and message["data"]["measure"] == "closure_13b"
    audit = records.audit_record(delivered[0], actor="router")
    assert value not in orjson.dumps(audit).decode()
    # the analyst's side: an entry and an audit record, no value anywhere
    entry = site.cases.entries(case.id)[-1]
    assert entry.step == "handover" and value not in (entry.detail or "")
    stored = site.workplace.audit.get(entry.record_id)
    assert stored is not None and stored["action"] == "riec-handover"
    assert value not in orjson.dumps(stored).decode()
    assert normalise("address", value) == value


def test_no_rule_no_hand_over_and_nothing_published(site: Site):
    ana = user(site, "ana")
    item, pseudonym = address_item(site, mayor=False)
    case = site.cases.open(ana, item.id, "outside the three mayors' rules")
    with pytest.raises(RiecError, match="no covenant rule"):
        site.cases.hand_over(ana, case.id, pseudonym, "closure_13b")
    item2, pseudonym2 = address_item(site, mayor=True)
    case2 = site.cases.open(ana, item2.id, "a measure no rule covers")
    with pytest.raises(RiecError, match="no covenant rule"):
        site.cases.hand_over(ana, case2.id, pseudonym2, "lease_termination")
    with pytest.raises(RiecError, match="measure must be"):
        site.cases.hand_over(ana, case2.id, pseudonym2, "demolition")
    assert site.published == []
    steps = [e.step for e in site.cases.entries(case.id)]
    assert steps == ["open-case", "handover-withheld"]  # the withholding is on file ...
    withheld = site.workplace.audit.get(site.cases.entries(case.id)[-1].record_id)
    assert withheld is not None  # ... and audited, naming what was not sent
    assert (withheld["action"], withheld["result"]) == ("riec-handover-withheld", "withheld")
    assert withheld["riec"]["measure"] == "closure_13b"
    assert withheld["riec"]["signal"].startswith(f"{case.id}-handover-")
    assert [e.step for e in site.cases.entries(case2.id)] == ["open-case", "handover-withheld"]


def test_only_the_cases_own_pseudonyms_and_only_within_scope(site: Site):
    ana = user(site, "ana")
    item, pseudonym = address_item(site, mayor=True)
    other, foreign = address_item(site, mayor=False)
    case = site.cases.open(ana, item.id, "scope")
    with pytest.raises(RiecError, match="not one of case"):
        site.cases.hand_over(ana, case.id, foreign, "closure_13b")
    with pytest.raises(NotFoundError):
        site.cases.hand_over(user(site, "other-riec"), case.id, pseudonym, "closure_13b")
    assert site.published == [] and other.id != item.id


def test_coverage_and_the_indicators_do_not_count_a_hand_over(site: Site):
    ana = user(site, "ana")
    item, pseudonym = address_item(site, mayor=True)
    case = site.cases.open(ana, item.id, "not an indicator")
    site.cases.hand_over(ana, case.id, pseudonym, "closure_13b")
    [(_, raw)] = site.published
    decided = process(raw, site.loaded.registry, site.loaded.policy, NOW)
    assert decided.signal is not None and decided.signal.schema.handover
    assert fact_of(decided) is None
    extractor = Extractor(site.loaded.policy, Pseudonymiser(site.keys))
    assert extractor.observe(decided.signal, decided.decisions, NOW).skipped == "handover"
