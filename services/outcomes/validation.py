"""The record of a stacking replay, kept with the rule file and audited.

``schakel indicators replay-stacking --record`` writes what the rule in force and the proposed
change would have done on the history to ``<covenants>/stacking/validation/`` (JSON, one file
per replay, named by the rule's name, version and the moment) and writes an audit record
naming the file and the rule file's SHA-256 — so the covenant change that adopts the proposal
can cite its validation, and ``schakel indicators model-doc`` lists it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import orjson

from services.audit.model import AuditStore
from services.core.decision import exchange_id
from services.core.outcomes.replay import ReplayResult
from services.core.stacking.config import StackingConfig

ACTOR: Final = "schakel-indicators"
VALIDATION_DIR: Final = "validation"


def sha256_of(file: Path) -> str:
    return hashlib.sha256(file.read_bytes()).hexdigest()


def changes_of(current: StackingConfig, proposed: StackingConfig) -> dict[str, Any]:
    """The parameters the proposal changes, with their new values."""
    before, after = current.model_dump(), proposed.model_dump()
    return {k: v for k, v in after.items() if before.get(k) != v}


def replay_record(
    *,
    rule_file: Path,
    current_config: StackingConfig,
    proposed_config: StackingConfig,
    current: ReplayResult,
    proposed: ReplayResult,
    outcome_window_days: int,
    threshold: int,
    history: Mapping[str, Any],
    now: datetime,
    by: str,
) -> dict[str, Any]:
    return {
        "kind": "stacking-replay",
        "recorded_at": now.isoformat(timespec="seconds"),
        "recorded_by": by,
        "rule": {
            "file": str(rule_file),
            "stacking": current_config.stacking,
            "version": current_config.version,
            "sha256": sha256_of(rule_file),
        },
        "changes": changes_of(current_config, proposed_config),
        "outcome_window_days": outcome_window_days,
        "threshold": threshold,
        "history": dict(history),
        "current": current.to_json(),
        "proposed": proposed.to_json(),
    }


def write_record(record: Mapping[str, Any], rule_file: Path, audit: AuditStore) -> Path:
    """Write the record next to the rule file and audit that it was made; return the path."""
    folder = rule_file.parent / VALIDATION_DIR
    folder.mkdir(parents=True, exist_ok=True)
    body = orjson.dumps(record, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    digest = hashlib.sha256(body).hexdigest()
    stamp = str(record["recorded_at"]).replace(":", "").replace("-", "")[:15]
    rule = record["rule"]
    path = folder / f"{rule['stacking']}-v{rule['version']}-{stamp}-{digest[:8]}.json"
    path.write_bytes(body)
    audit.record(
        [
            {
                "record_id": exchange_id("schakel", f"validation\x1f{digest}", "hub:indicators"),
                "action": "validate",
                "result": "recorded",
                "object": "stacking-rule",
                "signal_id": None,
                "origin": "schakel",
                "recipient": "hub:indicators",
                "actor": ACTOR,
                "timestamp": str(record["recorded_at"]),
                "processing_activity": None,
                "trace_id": digest,
                "covenant": None,
                "fields": {},
                "withheld_fields": [],
                "pseudonyms": {},
                "subjects": {},
                "reason": (
                    f"replay of stacking rule {rule['stacking']} version {rule['version']} "
                    f"(sha256 {rule['sha256'][:12]}) with {record['changes'] or 'no change'}, "
                    f"recorded in {path.name} (sha256 {digest[:12]})"
                ),
                "retention_days": None,
                "reidentify": False,
            }
        ],
        [],
    )
    return path


def read_records(rule_file: Path) -> list[dict[str, Any]]:
    """The replay records kept with the rule file, oldest first."""
    folder = rule_file.parent / VALIDATION_DIR
    if not folder.is_dir():
        return []
    records = []
    for file in sorted(folder.glob("*.json")):
        loaded = orjson.loads(file.read_bytes())
        if isinstance(loaded, dict) and loaded.get("kind") == "stacking-replay":
            records.append(loaded)
    return sorted(records, key=lambda r: str(r.get("recorded_at")))
