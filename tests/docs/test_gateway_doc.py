"""docs/gateway.md is tested: its curl body is a valid signal and its Python example runs
against a real gateway server (in-memory broker)."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import re

import httpx
import orjson
import pytest

from services.config import ROOT, Paths
from services.gateway.app import create_gateway_app
from services.gateway.serve import covenant_keys
from tests.gateway.helpers import issue_all, make_gateway, memory_broker, serving, sqlite_engine

pytestmark = pytest.mark.timeout(60)

DOC = (ROOT / "docs" / "gateway.md").read_text(encoding="utf-8")


def test_the_examples_work_against_a_running_gateway(monkeypatch):
    [python] = re.findall(r"```python\n(.*?)```", DOC, flags=re.DOTALL)
    [curl_body] = re.findall(r"-d '(\{.*?\})'", DOC)
    engine = sqlite_engine()
    broker = memory_broker()
    demo = dataclasses.replace(Paths.from_env({}), demo=True)  # the example uses a TEST key
    gateway = make_gateway(engine, broker, keys=covenant_keys(demo))
    tokens = issue_all(gateway.tokens)
    broker.append("feed.riec-nh", b'{"exchange_id": "x-1"}')
    with serving(create_gateway_app(gateway)) as url:
        answer = httpx.post(
            f"{url}/v1/signals",
            content=curl_body,
            headers={
                "Authorization": f"Bearer {tokens['liander']}",
                "Content-Type": "application/json",
            },
        )
        assert answer.status_code == 202, answer.text
        assert answer.json() == {"accepted": ["liander-2026-000123"], "rejected": []}

        monkeypatch.setenv("SCHAKEL_GATEWAY_URL", url)
        monkeypatch.setenv("SCHAKEL_PARTNER_TOKEN", tokens["liander"])
        monkeypatch.setenv("SCHAKEL_RECIPIENT_TOKEN", tokens["riec-nh"])
        out = io.StringIO()
        scope: dict[str, object] = {}
        with contextlib.redirect_stdout(out):
            exec(compile(python, "docs/gateway.md", "exec"), scope)  # noqa: S102 - our own doc
    produced = {
        orjson.loads(v)["id"]: orjson.loads(v) for _, v in broker.records("signals.liander")
    }
    assert sorted(produced) == ["liander-2026-000123", "liander-2026-000124"]
    # the client signs each request as a signed batch (here a batch of one)
    assert produced["liander-2026-000124"]["signature"].startswith("ed25519-merkle:demo-liander:")
    assert produced["liander-2026-000124"]["batch"].startswith("0:1:")
    assert "accepted: ['liander-2026-000124'] refused: []" in out.getvalue()
    assert "x-1" in out.getvalue()
    assert isinstance(scope["resume_from"], str)
    engine.dispose()


def test_the_example_signed_with_a_test_key_is_refused_outside_demo_mode():
    """As the doc says: a hub not in demo mode refuses the TEST-signed example."""
    [curl_body] = re.findall(r"-d '(\{.*?\})'", DOC)
    assert '"signature":"ed25519:demo-liander:' in curl_body
    engine = sqlite_engine()
    broker = memory_broker()
    gateway = make_gateway(engine, broker, keys=covenant_keys(Paths.from_env({})))
    tokens = issue_all(gateway.tokens)
    with serving(create_gateway_app(gateway)) as url:
        answer = httpx.post(
            f"{url}/v1/signals",
            content=curl_body,
            headers={
                "Authorization": f"Bearer {tokens['liander']}",
                "Content-Type": "application/json",
            },
        )
    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] == "unknown_key"
    assert broker.records("signals.liander") == []
    engine.dispose()
