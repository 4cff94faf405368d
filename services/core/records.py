"""The two outputs of a decision: the recipient's feed message and the audit record.

Feed messages carry only what the rule shares, envelope included: the exchange id, type, source
and time are the values the policy made under the rule's ``envelope`` (a keyed exchange id, the
time generalised to the day by default), never copied from the signal here. Audit records carry what BIO2 measure 8.15 and
the Logius "Logboek Dataverwerkingen" ask for (action, object, result, origin, actor,
timestamp, processing activity, trace id) plus the covenant rule, the fields disclosed and how,
the pseudonyms issued and the reason — and never a raw identifier: subjects appear only as
hub-internal pseudonyms.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any

from services.core.decision import Decision, Rejection

ACTIONS = {"delivered": "disclose", "withheld": "withhold"}


def feed_message(decision: Decision) -> dict[str, Any]:
    """The message a recipient receives for a delivered decision.

    Every value comes from the decision, which took it from the rule: the envelope values its
    ``envelope`` allows, the shared data, and the rule's own reference, retention and
    re-identification setting.
    """
    if not decision.delivered or decision.rule is None or decision.feed_id is None:
        raise ValueError("only a delivered decision has a feed message")
    return {
        **decision.envelope,
        "covenant": decision.rule.as_dict(),
        "data": decision.payload,
        "retention_days": decision.retention_days,
        "reidentify": decision.reidentify,
    }


def feed_key(decision: Decision) -> str:
    """Kafka key of a feed message: per-subject ordering without revealing the subject.

    The first pseudonym issued (in share order) keys the message, so everything one recipient
    receives about one subject lands in one partition, in order. Without a pseudonym the
    exchange id the recipient was given spreads messages evenly (the key is visible to the
    recipient, so it is never the hub's own exchange id).
    """
    for pseudonym in decision.pseudonyms.values():
        return pseudonym
    if decision.feed_id is None:
        raise ValueError("only a delivered decision has a feed key")
    return decision.feed_id


def audit_record(
    decision: Decision, *, actor: str, partner_signature: Mapping[str, object] | None = None
) -> dict[str, Any]:
    """The audit record of a delivered or withheld decision.

    ``partner_signature`` is what the signal's verified signature leaves
    (:func:`services.core.signing.verify_envelope`): with the partner's public key it proves
    the signal to a third party (:mod:`services.core.signature_proof`); None when unsigned.
    """
    rule = decision.rule
    return {
        "record_id": decision.exchange_id,
        "action": ACTIONS[decision.result],
        "result": decision.result,
        "object": decision.signal_type,
        "signal_id": decision.signal_id,
        "origin": decision.source,
        "recipient": decision.recipient,
        "actor": actor,
        "timestamp": _iso(decision.decided_at),
        "processing_activity": rule.purpose if rule else None,
        "trace_id": decision.signal_id,
        "covenant": rule.as_dict() if rule else None,
        "fields": dict(decision.disclosed),
        "withheld_fields": list(decision.withheld_fields),
        "pseudonyms": dict(decision.pseudonyms),
        "subjects": dict(decision.subjects),
        "reason": decision.reason,
        "retention_days": decision.retention_days,
        "reidentify": decision.reidentify,
        "feed_exchange_id": decision.feed_id,
        "partner_signature": dict(partner_signature) if partner_signature is not None else None,
    }


def rejection_record(rejection: Rejection, *, actor: str) -> dict[str, Any]:
    """The audit record of a signal refused before policy (it went to the dead letters)."""
    return {
        "record_id": rejection.rejection_id,
        "action": "reject",
        "result": "rejected",
        "object": None,
        "signal_id": rejection.signal_id,
        "origin": rejection.source,
        "recipient": None,
        "actor": actor,
        "timestamp": _iso(rejection.decided_at),
        "processing_activity": None,
        "trace_id": rejection.signal_id,
        "covenant": None,
        "fields": {},
        "withheld_fields": [],
        "pseudonyms": {},
        "subjects": {},
        "reason": f"{rejection.code}: {rejection.reason}",
        "retention_days": None,
        "reidentify": False,
    }


@lru_cache(maxsize=4096)
def _iso(moment: datetime) -> str:
    """RFC 3339 text; cached, as a batch's decisions share one decision time."""
    return moment.isoformat().replace("+00:00", "Z")
