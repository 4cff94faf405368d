"""``schakel publish`` refuses locally what the router would dead-letter, signatures included,
and publishes one partner's signals out of a mixed file."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from services.cli import publish as publish_cli
from services.cli.main import app
from services.config import Paths, load_policy
from services.core.envelope import peek
from services.core.pipeline import process
from services.core.pseudonyms import Pseudonymiser
from services.demo.keys import demo_key_id, demo_private_key
from services.keys.testing import MemoryKeyStore
from tests.core.builders import anomaly

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
runner = CliRunner()


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[bytes]]]:
    """What publish hands to the producer (the broker path: tests/hub/test_suggested_commands)."""
    calls: list[tuple[str, list[bytes]]] = []

    async def capture(partner: str, values: list[bytes]) -> None:
        calls.append((partner, values))

    monkeypatch.setattr(publish_cli, "_send", capture)
    monkeypatch.setenv("SCHAKEL_DEMO", "1")  # the examples are signed with the TEST keys
    return calls


def publish(path: Path, partner: str = "liander"):
    return runner.invoke(app, ["publish", str(path), "--as", partner])


def liander_lines() -> list[bytes]:
    return (EXAMPLES / "liander.jsonl").read_bytes().splitlines()


def test_a_tampered_signal_is_refused_before_it_is_sent(tmp_path: Path, sent):
    first, second, *_ = liander_lines()
    tampered = orjson.loads(second)
    tampered["data"]["score"] = 0.99  # the partner's signature no longer covers the data
    path = tmp_path / "signals.jsonl"
    path.write_bytes(first + b"\n" + orjson.dumps(tampered) + b"\n")
    result = publish(path)
    assert result.exit_code == 1
    assert "line 2: not sent: " in result.stderr and "[bad_signature]" in result.stderr
    assert "sent 1 signal(s) to signals.liander; 1 refused" in result.stderr
    assert sent == [("liander", [first])]


def test_a_signal_signed_with_an_unregistered_key_is_refused(tmp_path: Path, sent):
    from services.core.signing import sign

    envelope = sign(anomaly(), demo_private_key("liander"), "liander-unregistered")
    path = tmp_path / "signals.jsonl"
    path.write_bytes(orjson.dumps(envelope) + b"\n")
    result = publish(path)
    assert result.exit_code == 1 and "[unknown_key]" in result.stderr
    assert sent == []


def test_a_partners_own_file_is_sent_whole(sent):
    result = publish(EXAMPLES / "liander.jsonl")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.strip() == "sent 100 signal(s) to signals.liander; 0 refused"
    [(partner, values)] = sent
    assert partner == "liander" and values == liander_lines()


def test_a_mixed_file_sends_the_partners_own_and_skips_the_rest_in_one_line(sent):
    result = publish(EXAMPLES / "signals.jsonl")
    lines = result.stderr.splitlines()
    assert "sent 1253 signal(s) to signals.liander; 17 refused" in lines
    skipped = [line for line in lines if line.startswith("skipped ")]
    assert len(skipped) == 1 and skipped[0].startswith("skipped 1760 signal(s) of 11 other")
    assert not any("wrong_source" in line for line in lines)
    refused = [line for line in lines if " not sent: " in line]
    assert len(refused) == 17, "liander's own broken lines and lines nobody can attribute"
    assert result.exit_code == 1, "refused lines make the exit code 1"
    [(_, values)] = sent
    assert len(values) == 1253 and all(peek(v)[1] == "liander" for v in values)


def test_publish_refuses_exactly_what_the_router_would_refuse(tmp_path: Path, sent):
    """The local check and the router's pipeline agree line by line (signatures included)."""
    lines = [line for line in (EXAMPLES / "signals.jsonl").read_bytes().splitlines() if line]
    mine = [line for line in lines if peek(line)[1] in ("liander", None)]
    for number, line in enumerate(liander_lines()[:20]):  # and some tampered ones
        envelope = orjson.loads(line)
        if number % 2:
            envelope["data"]["municipality"] = "GM0363"
        else:
            envelope["signature"] = envelope["signature"].replace(
                demo_key_id("liander"), "other-key"
            )
        mine.append(orjson.dumps(envelope))
    path = tmp_path / "signals.jsonl"
    path.write_bytes(b"\n".join(mine) + b"\n")
    result = publish(path)
    refused_locally = {
        int(line.split(":", 1)[0].removeprefix("line "))
        for line in result.stderr.splitlines()
        if " not sent: " in line
    }
    paths = Paths.from_env()
    # the router as of the examples' last day: publish leaves "older than any rule keeps it"
    # (time_too_old, which depends on the day it runs) to the router
    now = datetime(2026, 11, 1, 12, tzinfo=UTC)
    policy = load_policy(
        list(paths.covenants),
        paths.schemas,
        paths.reference,
        Pseudonymiser(MemoryKeyStore.for_tests()),
        today=now.date(),
        demo=True,
    )
    assert policy.policy is not None
    refused_by_router = {
        number
        for number, line in enumerate(mine, start=1)
        if process(line, policy.registry, policy.policy, now, expected_source="liander").rejection
    }
    assert len(refused_by_router) == 17 + 20
    assert refused_locally == refused_by_router
    [(_, values)] = sent
    assert len(values) == len(mine) - len(refused_by_router)
