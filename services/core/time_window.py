"""Which signal times are plausible: not ahead of the hub's clock, not older than any use.

A signal's ``time`` says when the partner observed what it reports. Two kinds of time are
refused, each with its own rejection code:

``time_in_future``
    more than :data:`CLOCK_SKEW` after the moment the hub decides (its clock, or the moment a
    replay decides as of). Partners' clocks drift a little; a signal from further ahead is a
    broken clock or an attempt to keep a signal fresh past its use.
``time_too_old``
    older than the longest retention of every covenant rule (of any version) that lets the
    source send this type. No recipient could keep such a signal, so delivering it would
    only start its retention anew; a signal no rule covers is withheld by the policy anyway.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.core.covenant.model import Covenant
from services.core.errors import SignalRejected

CLOCK_SKEW = timedelta(minutes=5)
"""How far a signal's time may lie ahead of the hub's clock (clocks synchronised by NTP stay
well within this; it is Kerberos' default tolerance too)."""


@dataclass(frozen=True, slots=True)
class _Longest:
    period: timedelta
    rule: str
    """``covenant@version`` and rule id, named in the reason."""


class TimeWindow:
    """The plausible times of each (source, signal type), from the covenants' rules."""

    def __init__(self, covenants: Iterable[Covenant]) -> None:
        longest: dict[tuple[str, str], _Longest] = {}
        for cov in covenants:
            for rule in cov.rules:
                period = rule.retention_period
                for source in rule.from_:
                    for signal_type in rule.types:
                        known = longest.get((source, signal_type))
                        if known is None or period > known.period:
                            longest[(source, signal_type)] = _Longest(
                                period, f"{cov.key} rule {rule.id}"
                            )
        self._longest = longest

    def check(
        self,
        source: str,
        signal_type: str,
        time: datetime,
        moment: datetime,
        *,
        signal_id: str | None,
    ) -> None:
        """Raise :class:`SignalRejected` when ``time`` is implausible as of ``moment``."""
        check_not_ahead(time, moment, signal_id=signal_id)
        longest = self._longest.get((source, signal_type))
        if longest is not None and time < moment - longest.period:
            raise SignalRejected(
                "time_too_old",
                f"the signal's time lies more than {longest.period.days} days before the "
                f"decision time: that is the longest retention of any rule letting {source} "
                f"send {signal_type} ({longest.rule}), so no recipient could keep it. Fix: send "
                "signals while they are current; check the time the partner's system writes",
                signal_id=signal_id,
            )


def check_not_ahead(time: datetime, moment: datetime, *, signal_id: str | None) -> None:
    """Raise ``time_in_future`` when ``time`` lies more than :data:`CLOCK_SKEW` after
    ``moment``."""
    if time > moment + CLOCK_SKEW:
        minutes = int(CLOCK_SKEW.total_seconds() // 60)
        raise SignalRejected(
            "time_in_future",
            f"the signal's time lies more than {minutes} minutes after the hub's clock. Fix: "
            "set the partner system's clock right (NTP) and send the time of the observation",
            signal_id=signal_id,
        )
