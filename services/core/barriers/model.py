"""The barrier-model file format: a criminal business process, step by step.

Each step has the opportunities criminals use, the witting and unwitting facilitators, and
the barriers parties can raise (``by``: a partner kind, or a kind of party that is not (yet)
a covenant partner, such as a bank). Step ids are ``<model>.<step>``, the ids signal schemas
name in ``x-barrier-steps``.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.core.covenant.model import SLUG, PartyKind

OtherParty = Literal["bank", "retail", "logistics", "tax", "notary"]
"""Kinds of party that raise barriers without being covenant partners today."""

BARRIER_PARTIES: Final = frozenset(get_args(PartyKind)) | frozenset(get_args(OtherParty))

Text = Annotated[str, Field(min_length=1, max_length=400)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Facilitators(_Strict):
    witting: list[Text] = []
    unwitting: list[Text] = []


class Barrier(_Strict):
    by: PartyKind | OtherParty
    measure: Text


class Step(_Strict):
    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")]
    name: Text
    opportunities: Annotated[list[Text], Field(min_length=1)]
    facilitators: Facilitators
    barriers: list[Barrier] = []


class BarrierModel(_Strict):
    model: Annotated[str, Field(pattern=SLUG)]
    title: Text
    provenance: Text | None = None
    """Where the model comes from (the shipped ones: the project's own reconstruction in the
    spirit of the CCV's approach); shown by ``schakel barriers`` and the /barriers page."""
    steps: Annotated[list[Step], Field(min_length=1)]

    @model_validator(mode="after")
    def _step_ids(self) -> BarrierModel:
        seen: set[str] = set()
        for index, step in enumerate(self.steps):
            if not step.id.startswith(f"{self.model}."):
                raise ValueError(
                    f"steps.{index}.id: {step.id!r} must start with {self.model + '.'!r}"
                )
            if step.id in seen:
                raise ValueError(f"steps.{index}.id: {step.id!r} appears twice")
            seen.add(step.id)
        return self

    @property
    def step_ids(self) -> tuple[str, ...]:
        return tuple(step.id for step in self.steps)
