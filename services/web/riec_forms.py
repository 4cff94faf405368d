"""Reading the RIEC queue's filters from a query string, strictly (see :mod:`.forms`).

Every filter is a known value — a state, a municipality code, a barrier-model step or signal
type the registry has — or refused: the filters enter the access log, and free text typed
into one (a name, an address) must not."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from datetime import datetime

from services.riec.model import ItemState, QueueFilters
from services.web.forms import FormError, text

QUEUE_FIELDS = ("state", "municipality", "step", "type", "min_score", "max_age", "before")
MUNICIPALITY = re.compile(r"GM[0-9]{4}")


def queue_filters(
    values: Mapping[str, str],
    steps: Collection[str] | None = None,
    types: Collection[str] | None = None,
) -> tuple[QueueFilters, str | None]:
    """The queue's filters and its ``before`` cursor; :class:`FormError` for a bad value (a
    ``step`` not in ``steps``, a ``type`` not in ``types``, when given)."""
    municipality = text(values, "municipality")
    if municipality is not None and not MUNICIPALITY.fullmatch(municipality):
        raise FormError("municipality must be a CBS code like GM0361")
    step = text(values, "step")
    if step is not None and steps is not None and step not in steps:
        raise FormError("step must be a step of the barrier models (see the list)")
    signal_type = text(values, "type")
    if signal_type is not None and types is not None and signal_type not in types:
        raise FormError("type must be a signal type of the registry (see the list)")
    state = text(values, "state")
    if state is not None and state not in {s.value for s in ItemState}:
        raise FormError(f"state must be one of {', '.join(s.value for s in ItemState)}")
    min_score = text(values, "min_score")
    try:
        score = None if min_score is None else float(min_score)
    except ValueError:
        raise FormError("min_score must be a number like 0.8") from None
    if score is not None and not 0 <= score <= 1:
        raise FormError("min_score must be between 0 and 1")
    age = text(values, "max_age")
    if age is not None and not (age.isascii() and age.isdigit() and len(age) <= 5):
        raise FormError("max_age must be a whole number of days")
    before = text(values, "before")
    if before is not None:
        moment, bar, last = before.partition("|")
        try:
            datetime.fromisoformat(moment)
        except ValueError:
            bar = ""
        if not bar or not last:
            raise FormError("before must be a cursor from the queue's 'older' link")
    filters = QueueFilters(
        state=None if state is None else ItemState(state),
        municipality=municipality,
        step=step,
        signal_type=signal_type,
        min_score=score,
        max_age_days=None if age is None else int(age),
    )
    return filters, before
