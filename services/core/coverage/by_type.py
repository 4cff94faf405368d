"""Counts per signal type for one municipality and quarter, released so that no difference of
released figures — on the barrier plan or against the coverage page — reveals a suppressed
count.

The barrier plan shows, per municipality and quarter, how many signals of each type informing
a barrier-model step were counted. Steps share types (``synthetic.fit_out``'s types are
``cannabis.fit_out``'s but one), so a step's true total minus another's would be the count of
one type. The rule:

1. The only counts released are per signal type (municipality x quarter x type), each
   suppressed below the threshold on its own.
2. Every other figure — a step's signals, the reports — is a sum of *released* type counts,
   never of true counts; so two figures differ only by released counts.
3. Complementary suppression against the coverage page, which releases the same facts per
   month and category. For one category, the released months' sum minus the released type
   counts' sum is the suppressed types' remainder minus the suppressed months' sum — known to
   anyone reading both pages. It must be 0 or at least the threshold either way; if not, the
   smallest released type count of the category is suppressed too, and again, until it is
   (or nothing of the category is released, when the plan says nothing about it).
4. Nor may that remainder sit at the end of its range, where it pins the suppressed cells.
   With ``k`` types and ``m`` months of the category suppressed (each at most threshold - 1),
   a remainder of ``k x (threshold - 1)`` says every suppressed type is threshold - 1 (and
   every suppressed month 0), one of ``-m x (threshold - 1)`` that every suppressed month of
   the coverage page is threshold - 1: it is treated like a small one. ``k`` and ``m`` count
   only the non-zero suppressed cells (a reader sees at least as many), so the check errs on
   the side of suppressing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from services.core.coverage.facts import Category


def release_by_type(
    counts: Mapping[str, int],
    category_of: Callable[[str], Category | None],
    months: Callable[[Category], Sequence[int]],
    threshold: int,
) -> dict[str, int]:
    """The released count of each type in ``counts`` (true counts of one municipality and
    quarter); a type left out is suppressed. ``months(category)`` are the true monthly counts
    of ``category`` in the quarter, which the coverage page releases each on its own."""
    released = {t: n for t, n in counts.items() if n >= threshold}
    by_category: dict[Category, list[str]] = {}
    for signal_type in counts:
        category = category_of(signal_type)
        if category is not None:
            by_category.setdefault(category, []).append(signal_type)
    for category, types in by_category.items():
        monthly = months(category)
        released_months = sum(n for n in monthly if n >= threshold)
        suppressed_months = sum(1 for n in monthly if 0 < n < threshold)
        shown = sorted((released[t], t) for t in types if t in released)
        while shown:
            difference = released_months - sum(n for n, _ in shown)
            suppressed_types = sum(1 for t in types if counts[t] > 0 and t not in released)
            if _safe(difference, suppressed_types, suppressed_months, threshold):
                break
            del released[shown.pop(0)[1]]
    return released


def _safe(difference: int, types: int, months: int, threshold: int) -> bool:
    """Whether a remainder ``difference`` (suppressed types minus suppressed months) of
    ``types`` non-zero suppressed types and ``months`` non-zero suppressed months reveals no
    suppressed cell (rules 3 and 4)."""
    if difference == 0:
        return True
    if abs(difference) < threshold:
        return False
    most = threshold - 1
    pinned_types = types > 0 and difference >= types * most
    pinned_months = months > 0 and difference <= -months * most
    return not (pinned_types or pinned_months)


def released_sum(released: Mapping[str, int], types: list[str] | set[str]) -> int | None:
    """The sum of the released counts of ``types``; ``None`` when none of them is released
    (so a figure is never a bare 0 standing in for a suppressed count)."""
    found = [released[t] for t in types if t in released]
    return sum(found) if found else None
