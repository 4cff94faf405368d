"""``schakel publish`` reads each line as strict I-JSON before it signs or sends it, and refuses a
time ahead of the clock: a line that means two things is never signed as its last reading."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from services.cli.main import app
from services.demo.keys import DemoSigner
from tests.cli.test_partner_keys_cli import make_key, registered, runner, sent
from tests.core.attacks import ATTACKS
from tests.core.builders import anomaly

__all__ = ["sent"]  # the fixture capturing what publish would send

pytestmark = pytest.mark.timeout(60)

REFUSED = ("duplicate_before_signed", "duplicate_id", "integer_beyond_2_53", "lone_surrogate")


def _ahead() -> bytes:
    envelope = anomaly(signal_id="ahead-1")
    envelope["time"] = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    return orjson.dumps(envelope)


@pytest.mark.parametrize("sign", [False, True], ids=["as-is", "sign-with"])
def test_publish_refuses_each_line_that_means_two_things(
    tmp_path: Path, sent, sign: bool, monkeypatch: pytest.MonkeyPatch
):
    signals = tmp_path / "signals.jsonl"
    args = ["publish", str(signals), "--as", "liander"]
    if sign:  # publish signs with a key the hub's covenant registers
        good = orjson.dumps(anomaly(signal_id="good-1"))
        key_path, printed = make_key(tmp_path / "keys", "--key-id", "liander-1")
        registered(tmp_path, printed, monkeypatch)
        args += ["--sign-with", str(key_path)]
    else:  # the line comes signed with the demo partner's TEST key, to a hub in demo mode
        good = orjson.dumps(DemoSigner()(anomaly(signal_id="good-1")))
        monkeypatch.setenv("SCHAKEL_DEMO", "1")
    lines = [good, *(ATTACKS[name].raw for name in REFUSED), _ahead()]
    signals.write_bytes(b"".join(line + b"\n" for line in lines))
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    for number, name in enumerate(REFUSED, start=2):
        assert f"line {number}: not sent" in result.stderr
        assert f"[{ATTACKS[name].code}]" in result.stderr
    assert f"line {len(lines)}: not sent" in result.stderr and "[time_in_future]" in result.stderr
    [(partner, values)] = sent
    assert partner == "liander"
    assert [orjson.loads(v)["id"] for v in values] == ["good-1"]
