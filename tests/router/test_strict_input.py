"""Input that means two things, or carries an implausible time, is dead-lettered with its own
reason code at the router, in ``schakel replay`` and in the coverage count, never decided.

The attacks (tests/core/attacks.py) are Liander signals signed with its demo TEST key: each
one's signature verifies as far as a last-value-wins parser reads it.
"""

from __future__ import annotations

import base64
from pathlib import Path

import orjson
import pytest

from services.core.pipeline import process
from services.core.signing import canonical_envelope, parse_signature, verifies
from services.coverage.ingest import ingest
from services.coverage.testing import MemoryCoverageStore
from services.demo.keys import demo_private_key
from services.replay.runner import replay
from services.router.batch import Consumed, route_batch
from services.router.topics import signals_topic
from tests.core.attacks import ATTACKS, INVALID_UTF8, NOW, PLAUSIBLE_TIMES, good
from tests.router.helpers import policy_source

pytestmark = pytest.mark.timeout(60)

ALL = {**ATTACKS, "invalid_utf8": INVALID_UTF8}


def test_the_attacks_verify_as_a_last_value_wins_parser_reads_them():
    """Without the strict reading these attacks pass the signature check: a duplicate's last
    value is the signed one, and an inexact integer shares the signature of its double."""
    public = demo_private_key("liander").public_key()
    names = ["duplicate_before_signed", "duplicate_nested", "duplicate_id"]
    names += ["integer_beyond_2_53", "negative_integer_beyond_2_53"]
    for name in names:
        sent = orjson.loads(ATTACKS[name].raw)  # orjson keeps the last of a member given twice
        _, signature = parse_signature(sent["signature"])
        assert verifies(public, signature, canonical_envelope(sent)), name
    # the number attack: 9007199254740993 changed to ...992 after signing
    sent = orjson.loads(ATTACKS["integer_beyond_2_53"].raw.replace(b"740993", b"740992"))
    _, signature = parse_signature(sent["signature"])
    assert verifies(public, signature, canonical_envelope(sent))


def test_every_attack_is_dead_lettered_and_audited_with_its_own_code():
    source = policy_source()
    values = [good("liander-good"), *(attack.raw for attack in ALL.values())]
    records = [Consumed(signals_topic("liander"), 0, i, v) for i, v in enumerate(values)]
    routed = route_batch(records, source.current.registry, source.current.policy, NOW)

    letters = [orjson.loads(d.value) for d in routed.dead_letters]
    assert [(d["code"], d["signal_id"]) for d in letters] == [
        (attack.code, attack.signal_id) for attack in ALL.values()
    ]
    for letter, attack in zip(letters, ALL.values(), strict=True):
        assert base64.b64decode(letter["original"]) == attack.raw
        assert "Fix" in letter["reason"]
    rejections = [r for r in routed.audit if r["action"] == "reject"]
    assert [r["reason"].split(":", 1)[0] for r in rejections] == [a.code for a in ALL.values()]
    for record in rejections:
        assert "forged" not in record["reason"] and "871" not in record["reason"]
    decided = {r["signal_id"] for r in routed.audit if r["action"] != "reject"}
    assert decided == {"liander-good"}
    assert routed.delivered >= 1


def test_the_tampered_integer_is_refused_before_and_after_tampering():
    source = policy_source()
    signed = ATTACKS["integer_beyond_2_53"].raw
    for raw in (signed, signed.replace(b"740993", b"740992")):
        outcome = process(raw, source.current.registry, source.current.policy, NOW)
        assert outcome.rejection is not None
        assert outcome.rejection.code == "integer_out_of_range"


def test_times_just_inside_the_window_are_decided():
    source = policy_source()
    for name, raw in PLAUSIBLE_TIMES.items():
        outcome = process(raw, source.current.registry, source.current.policy, NOW)
        assert outcome.rejection is None, (name, outcome.rejection)
        assert outcome.decisions


def test_replay_dead_letters_every_attack_with_its_code(tmp_path: Path):
    source = policy_source()
    lines = [good("liander-good") + b"\n", *(attack.raw + b"\n" for attack in ALL.values())]
    summary = replay(
        lines,
        source.current.registry,
        source.current.policy,
        tmp_path,
        clock=lambda: NOW,
        at=NOW,
    )
    dead = [orjson.loads(x) for x in (tmp_path / "dead-letters.jsonl").read_bytes().splitlines()]
    assert [(d["line"], d["code"], d["signal_id"]) for d in dead] == [
        (n, attack.code, attack.signal_id) for n, attack in enumerate(ALL.values(), start=2)
    ]
    assert summary.rejected == len(ALL)
    assert sum(summary.delivered.values()) >= 1


def test_replay_as_of_each_signals_own_time_checks_the_time_against_that_moment(tmp_path: Path):
    """Deciding history as of each signal's time, an old signal is as old as that moment."""
    source = policy_source()
    old = ATTACKS["time_too_old"].raw
    summary = replay(
        [old], source.current.registry, source.current.policy, tmp_path,
        clock=lambda: NOW, use_signal_time=True,
    )  # fmt: skip
    assert summary.rejected == 0


def test_coverage_counts_none_of_the_attacks():
    source = policy_source()
    store = MemoryCoverageStore()
    raws = [good("liander-good"), *(attack.raw for attack in ALL.values())]
    summary = ingest(
        raws, source.current.registry, source.current.policy, store, NOW, at_signal_time=False
    )
    assert summary.read == len(raws) and summary.counted == 1
