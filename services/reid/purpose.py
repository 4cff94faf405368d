"""When a re-identification request's purpose is over.

A request filed from a RIEC case file (:mod:`services.riec.cases`) has the case as its purpose
(``case <id>: <why>``) and case reference: it holds while that case is open. Once the case is
closed (its outcome recorded) or purged (its retention passed), the value behind the pseudonym
is no longer for anything, so the request is neither approved nor revealed — whichever door
(the web's pages, ``schakel reid``) it is asked through. Other requests name a case of the
requester's own, which the hub does not know: their purpose is theirs to judge.
"""

from __future__ import annotations

from sqlalchemy import Engine, inspect, select

from services.database.tables.riec import riec_cases
from services.reid.model import Request

OPEN = "open"
"""The state of an open case (``services.riec.model.CaseState.OPEN``)."""


def case_over(engine: Engine, request: Request) -> str | None:
    """Why ``request``'s purpose is over — the case it was filed from is closed or purged — or
    ``None`` (its case is open, or it was not filed from a case file)."""
    if not request.purpose.startswith(f"case {request.case_ref}: "):
        return None
    if not inspect(engine).has_table(riec_cases.name):
        return None
    with engine.connect() as connection:
        state = connection.execute(
            select(riec_cases.c.state).where(riec_cases.c.id == request.case_ref)
        ).scalar_one_or_none()
    if state is None:
        return f"case {request.case_ref} it was filed from is purged"
    if state != OPEN:
        return f"case {request.case_ref} it was filed from is {state}"
    return None
