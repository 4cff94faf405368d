"""The RIEC workplace's steps on an item or a case, shared by the form pages and the JSON
API: the same names, the same fields, the same checks (the workplace's), the same audit.

Fields come as a mapping of strings (a submitted form, or a JSON object's string values); a
missing field is ``""``, which the workplace refuses by name where it needs one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from services.riec.cases import CaseFiles
from services.riec.model import Case, Item, RiecError
from services.riec.workplace import Workplace
from services.web.users import User

ITEM_STEPS = ("take", "takeover", "dismiss", "reopen", "case")
CASE_STEPS = ("note", "decision", "reid", "handover", "outcome")


class UnknownStepError(RiecError):
    """No such step (answers 404, like an unknown route)."""


@dataclass(frozen=True, slots=True)
class Done:
    """What a step did: the item it moved, the case it opened or acted on, and any reference
    it made (a re-identification request id, a hand-over signal id)."""

    item: Item | None = None
    case: Case | None = None
    reference: dict[str, object] | None = None


def item_step(
    workplace: Workplace, cases: CaseFiles, user: User, item_id: str, step: str,
    values: Mapping[str, str],
) -> Done:  # fmt: skip
    """Take ``step`` on the item: ``take``, ``takeover`` (``reason``), ``dismiss``
    (``reason``), ``reopen`` (``reason``), ``case`` (an open ``case`` to add it to, or the
    ``title`` of a new one)."""
    reason = values.get("reason", "")
    if step == "take":
        return Done(item=workplace.take(user, item_id))
    if step == "takeover":
        return Done(item=workplace.take_over(user, item_id, reason))
    if step == "dismiss":
        return Done(item=workplace.dismiss(user, item_id, reason))
    if step == "reopen":
        return Done(item=workplace.reopen(user, item_id, reason))
    if step == "case":
        if values.get("case"):
            moved = cases.add(user, values["case"], item_id)
            return Done(item=moved, case=cases.get(user, values["case"]))
        made = cases.open(user, item_id, values.get("title", ""))
        return Done(item=workplace.item(user, item_id), case=made)
    raise UnknownStepError(f"no item step {step!r}. Fix: one of {', '.join(ITEM_STEPS)}.")


def case_step(
    cases: CaseFiles, user: User, case_id: str, step: str, values: Mapping[str, str]
) -> Done:
    """Take ``step`` on the case: ``note``/``decision`` (``text``), ``reid`` (``pseudonym``,
    ``reason``), ``handover`` (``pseudonym``, ``measure``), ``outcome`` (``outcome``,
    ``text``)."""
    if step not in CASE_STEPS:
        raise UnknownStepError(f"no case step {step!r}. Fix: one of {', '.join(CASE_STEPS)}.")
    reference: dict[str, object] | None = None
    if step in ("note", "decision"):
        cases.note(user, case_id, values.get("text", ""), decision=step == "decision")
    elif step == "reid":
        made = cases.reidentify(
            user, case_id, values.get("pseudonym", ""), values.get("reason", "")
        )
        reference = {"request": made.id}
    elif step == "handover":
        sent = cases.hand_over(
            user, case_id, values.get("pseudonym", ""), values.get("measure", "")
        )
        reference = {"signal": sent.signal_id, "recipients": list(sent.recipients)}
    else:
        cases.outcome(user, case_id, values.get("outcome", ""), values.get("text", ""))
    return Done(case=cases.get(user, case_id), reference=reference)
