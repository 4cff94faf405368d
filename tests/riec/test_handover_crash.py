"""Attack: the process dies between publishing a hand-over and recording it.

A hand-over is staged — with its case entry and audit record — before its signal is published,
and marked done after. Wherever a crash falls, the case file never lacks a hand-over the
broker holds and never claims one it does not; a retry (the analyst handing over again, or the
web workplace resuming at start) sends the very same signal, so the router takes it once."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from services.config import Paths, load_policy
from services.core.pipeline import process
from services.core.pseudonyms import Domain, Pseudonymiser
from services.database.tables.riec import riec_handovers
from services.demo.keys import DemoSigner
from services.riec.handover import HandOver, Prepared
from services.riec.model import RiecError
from services.riec.retention import purge
from tests.riec.helpers import DRUGS, RIEC, Site, user
from tests.riec.test_handover import address_item
from tests.stacking.helpers import NOW


class Crash(BaseException):
    """The process dies here (nothing catches it, as nothing survives a kill)."""


def rewire(site: Site, publish: Callable[[str, bytes], None], *, policy: object = None) -> None:
    rules = site.loaded.registry, policy or site.loaded.policy
    site.cases.handover = HandOver(Pseudonymiser(site.keys), lambda: rules, DemoSigner(), publish)  # type: ignore[arg-type]


def dies(site: Site, *, after_publishing: bool) -> list[bytes]:
    """The broker's topic: the first publish dies (having put the signal there first, or
    not); later ones go through."""
    topic: list[bytes] = []

    def publish(_source: str, raw: bytes) -> None:
        first = not hasattr(publish, "done")
        publish.done = True  # type: ignore[attr-defined]
        if first and not after_publishing:
            raise Crash
        topic.append(raw)
        if first:
            raise Crash

    rewire(site, publish)
    return topic


def signal_id(raw: bytes) -> str:
    return str(orjson.loads(raw)["id"])


def audited(site: Site, action: str) -> list[dict[str, object]]:
    return [r for _, r in site.workplace.audit.records(limit=100_000) if r["action"] == action]


def crashed_before_publishing(site: Site) -> tuple[Any, Any, str, list[bytes]]:
    """Analyst ana's case whose hand-over died before its signal was published: (ana, the
    case, its pseudonym, the topic the signal would have gone to)."""
    ana = user(site, "ana")
    item, pseudonym = address_item(site, mayor=True)
    case = site.cases.open(ana, item.id, "closure procedure")
    topic = dies(site, after_publishing=False)
    with pytest.raises(Crash):
        site.cases.hand_over(ana, case.id, pseudonym, "closure_13b")
    return ana, case, pseudonym, topic


def test_a_crash_after_publishing_leaves_the_hand_over_on_file_and_a_retry_sends_it_once(
    site: Site,
):
    ana = user(site, "ana")
    item, pseudonym = address_item(site, mayor=True)
    case = site.cases.open(ana, item.id, "closure procedure")
    topic = dies(site, after_publishing=True)
    with pytest.raises(Crash):
        site.cases.hand_over(ana, case.id, pseudonym, "closure_13b")
    [raw] = topic  # the mayor will get it: the case file must say so
    entries = site.cases.entries(case.id)
    assert [e.step for e in entries] == ["open-case", "handing-over"]
    assert signal_id(raw) in (entries[-1].detail or "")
    assert "being published" in (entries[-1].detail or "")  # never "handed over" before it is
    [staged] = audited(site, "riec-handing-over")
    assert staged["result"] == "staged" and staged["riec"]["signal"] == signal_id(raw)  # type: ignore[index]
    sent = site.cases.hand_over(ana, case.id, pseudonym, "closure_13b")  # the analyst retries
    assert sent.signal_id == signal_id(raw)
    assert topic == [raw, raw]  # the very same signal: the router takes it as one
    decided = [process(r, site.loaded.registry, site.loaded.policy, NOW) for r in topic]
    assert {d.signal.id for d in decided if d.signal} == {sent.signal_id}
    steps = [e.step for e in site.cases.entries(case.id)]
    assert steps == ["open-case", "handing-over", "handover"]
    assert len(audited(site, "riec-handover")) == 1
    assert site.cases.staged_handovers(ana, case.id) == []


def test_a_crash_before_publishing_claims_nothing_and_the_restart_finishes_it(site: Site):
    ana, case, _pseudonym, topic = crashed_before_publishing(site)
    assert topic == []
    steps = [e.step for e in site.cases.entries(case.id)]
    assert steps == ["open-case", "handing-over"]  # no "handover": nothing was sent
    assert audited(site, "riec-handover") == []
    [waiting] = site.cases.staged_handovers(ana, case.id)
    assert site.cases.resume_handovers() == 1  # what the web workplace does at start
    [raw] = topic
    assert signal_id(raw) == waiting.signal_id
    entries = site.cases.entries(case.id)
    assert [e.step for e in entries] == ["open-case", "handing-over", "handover"]
    assert entries[-1].actor == "ana"
    [done] = audited(site, "riec-handover")
    assert done["actor"] == "ana" and done["riec"]["signal"] == waiting.signal_id  # type: ignore[index]
    assert site.cases.resume_handovers() == 0 and len(topic) == 1


def test_a_broker_that_refuses_leaves_it_staged_and_a_retry_uses_the_same_id(site: Site):
    ana = user(site, "ana")
    item, pseudonym = address_item(site, mayor=True)
    case = site.cases.open(ana, item.id, "closure procedure")
    topic: list[bytes] = []
    down = [True]

    def publish(_source: str, raw: bytes) -> None:
        if down[0]:
            raise RiecError("the broker did not confirm the hand-over (KafkaTimeoutError).")
        topic.append(raw)

    rewire(site, publish)
    with pytest.raises(RiecError, match="stays staged as signal"):
        site.cases.hand_over(ana, case.id, pseudonym, "closure_13b")
    with pytest.raises(RiecError, match="stays staged"):
        site.cases.hand_over(ana, case.id, pseudonym, "closure_13b")
    [waiting] = site.cases.staged_handovers(ana, case.id)  # two attempts, one hand-over
    down[0] = False
    sent = site.cases.hand_over(ana, case.id, pseudonym, "closure_13b")
    assert sent.signal_id == waiting.signal_id and len(topic) == 1
    steps = [e.step for e in site.cases.entries(case.id)]
    assert steps == ["open-case", "handing-over", "handover"]
    # what was staged never holds the value behind the pseudonym
    _, value = Pseudonymiser(site.keys).reidentify(Domain(DRUGS, RIEC, reversible=True), pseudonym)
    with site.engine.connect() as connection:
        rows = connection.execute(select(riec_handovers)).all()
    assert rows and value not in str(rows)
    assert not [e for e in site.cases.entries(case.id) if value in (e.detail or "")]


def test_a_staged_hand_over_no_rule_allows_any_more_is_withheld_on_retry(
    site: Site, tmp_path: Path
):
    ana, case, _pseudonym, topic = crashed_before_publishing(site)
    paths = Paths.from_env({})
    [shipped] = paths.covenants
    changed = tmp_path / "covenants"
    shutil.copytree(shipped, changed)
    text = changed / "drugslocaties-nh" / "2025.1.yaml"
    rule = 'data.measure == "closure_13b"'
    assert rule in text.read_text()
    text.write_text(text.read_text().replace(rule, 'data.measure == "energy_recovery"'))
    without = load_policy(
        [changed], paths.schemas, paths.reference, Pseudonymiser(site.keys),
        today=NOW.date(), demo=True,
    )  # fmt: skip
    assert without.policy is not None
    rewire(site, lambda _s, raw: topic.append(raw), policy=without.policy)
    assert site.cases.resume_handovers() == 0
    assert topic == []
    steps = [e.step for e in site.cases.entries(case.id)]
    assert steps == ["open-case", "handing-over", "handover-withheld"]
    assert site.cases.staged_handovers(ana, case.id) == []
    [withheld] = audited(site, "riec-handover-withheld")
    [staged] = audited(site, "riec-handing-over")
    assert withheld["riec"]["signal"] == staged["riec"]["signal"]  # type: ignore[index]
    assert "not sent again" in (site.cases.entries(case.id)[-1].detail or "")


def test_a_staged_hand_over_is_purged_with_its_case(site: Site):
    _ana, case, _, _ = crashed_before_publishing(site)
    purge(site.workplace, case.keep_until.replace(year=case.keep_until.year + 1))
    with site.engine.connect() as connection:
        assert connection.execute(select(riec_handovers)).all() == []
    assert site.cases.resume_handovers() == 0


def test_prepare_is_deterministic(site: Site):
    """The same id and time build the same signal, byte for byte (the retry relies on it)."""
    ana = user(site, "ana")
    item, pseudonym = address_item(site, mayor=True)
    case = site.cases.open(ana, item.id, "closure procedure")
    handover = site.cases.handover
    assert handover is not None
    made: list[Prepared] = [
        handover.prepare(case, pseudonym, "closure_13b", "GM0361", NOW, "s-1") for _ in range(2)
    ]
    assert made[0].raw == made[1].raw and made[0].handed == made[1].handed


def test_the_case_page_offers_to_finish_a_staged_hand_over(site: Site):
    from tests.riec.test_plan import csrf_of, signed_in

    ana, case, pseudonym, topic = crashed_before_publishing(site)
    client = signed_in(site, "ana")
    page = client.get(f"/riec/cases/{case.id}").text
    [waiting] = site.cases.staged_handovers(ana, case.id)
    assert 'id="staged-1"' in page and waiting.signal_id in page
    assert "Finish this hand-over" in page
    api = client.get(f"/api/riec/cases/{case.id}").json()["staged_handovers"]
    assert [h["signal"] for h in api] == [waiting.signal_id]
    other = signed_in(site, "other-riec")  # another RIEC sees neither the case nor its staging
    assert other.get(f"/api/riec/cases/{case.id}").status_code == 404
    form = {"csrf": csrf_of(client), "pseudonym": pseudonym, "measure": "closure_13b"}
    done = client.post(f"/riec/cases/{case.id}/handover", data=form)
    assert done.status_code == 303
    [raw] = topic
    assert signal_id(raw) == waiting.signal_id
    assert 'id="staged-1"' not in client.get(f"/riec/cases/{case.id}").text
