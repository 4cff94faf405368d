"""The stacking worker signs alerts with the operator's key; the public TEST key only in the demo."""

from __future__ import annotations

import pytest

from services.config import DEMO_ENV
from services.hub.up import stacking_environment
from services.stacking.worker import KEY_FILE_ENV, alert_signer


def test_without_a_key_file_the_worker_refuses_to_sign_and_names_the_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(KEY_FILE_ENV, raising=False)
    monkeypatch.delenv(DEMO_ENV, raising=False)
    with pytest.raises(SystemExit) as refused:
        alert_signer("schakel")
    assert "schakel keys partner schakel" in str(refused.value)


def test_the_demo_may_sign_with_the_test_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_FILE_ENV, raising=False)
    monkeypatch.setenv(DEMO_ENV, "1")
    signer = alert_signer("schakel")
    envelope = {"id": "a1", "source": "schakel", "type": "hub.stacked_location_alert.v1"}
    assert signer(envelope)["signature"].startswith("ed25519:")


def test_up_starts_stacking_only_with_a_key_or_in_the_demo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_FILE_ENV, raising=False)
    assert stacking_environment({"A": "1"}, demo=False) is None
    assert stacking_environment({"A": "1"}, demo=True) == {"A": "1", DEMO_ENV: "1"}
    monkeypatch.setenv(KEY_FILE_ENV, "/keys/schakel.key")
    assert stacking_environment({"A": "1"}, demo=False) == {"A": "1"}
