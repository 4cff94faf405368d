"""Covenant files are reloaded on change (or request) without a restart; a broken edit is
refused and the policy in force stays."""

from __future__ import annotations

import shutil
import time
from datetime import UTC, datetime

from services.config import ROOT
from tests.router.helpers import policy_source


def test_reload_on_change_and_refuse_a_broken_edit(tmp_path):
    folder = tmp_path / "covenants"
    shutil.copytree(ROOT / "covenants", folder)
    source = policy_source([folder])
    before = {c.key for c in source.current.policy.covenants}
    assert not source.maybe_reload()  # nothing changed

    renewed = folder / "schimmige-schuren" / "2024.1.yaml"
    text = renewed.read_text().replace(
        "approach_kind: keep\n      requested_use: keep", "approach_kind: keep"
    )
    renewed.write_text(text)
    time.sleep(0.01)
    assert source.maybe_reload()
    assert source.current.policy is not None

    broken = folder / "nh-drugsalert" / "2025.1.yaml"
    in_force = source.current.policy
    broken.write_text(
        broken.read_text().replace("from: [meld-misdaad-anoniem]", "from: [nobody]", 1)
    )
    assert not source.maybe_reload()
    assert source.current.policy is in_force  # the working policy stays in force
    assert {c.key for c in source.current.policy.covenants} == before


def test_new_version_takes_effect_and_is_named(tmp_path):
    folder = tmp_path / "covenants"
    shutil.copytree(ROOT / "covenants", folder)
    source = policy_source([folder])
    old = folder / "schimmige-schuren" / "2024.1.yaml"
    old.write_text(old.read_text().replace("until: 2028-02-29", "until: 2026-11-30"))
    new = folder / "schimmige-schuren" / "2026.2.yaml"
    new.write_text(
        old.read_text()
        .replace('version: "2024.1"', 'version: "2026.2"')
        .replace("from: 2024-03-01", "from: 2026-12-01")
        .replace("until: 2026-11-30", "until: 2030-11-30")
    )
    source.request_reload()
    assert source.maybe_reload()
    keys = {c.key for c in source.current.policy.covenants}
    assert {"schimmige-schuren@2024.1", "schimmige-schuren@2026.2"} <= keys
    in_force_now = {
        c.key for c in source.current.policy.in_force(datetime(2026, 11, 22, tzinfo=UTC))
    }
    in_force_later = {
        c.key for c in source.current.policy.in_force(datetime(2026, 12, 2, tzinfo=UTC))
    }
    assert (
        "schimmige-schuren@2024.1" in in_force_now
        and "schimmige-schuren@2026.2" not in in_force_now
    )
    assert (
        "schimmige-schuren@2026.2" in in_force_later
        and "schimmige-schuren@2024.1" not in in_force_later
    )
