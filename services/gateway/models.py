"""Response shapes, for the OpenAPI document (answers are built as plain JSON)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ProblemDetails(BaseModel):
    """RFC 9457 problem details (``application/problem+json``)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="URI naming the kind of problem")
    title: str
    status: int
    detail: str = Field(description="What is wrong and how to fix it")
    code: str = Field(description="Stable machine-readable reason")
    index: int | None = Field(None, description="Position of the signal in the request")
    signal_id: str | None = Field(None, description="Id of the signal, when it could be read")
    errors: list[dict[str, Any]] | None = Field(
        None, description="One problem per signal, when no signal of a batch was accepted"
    )


class Accepted(BaseModel):
    """Signals the broker acknowledged, and a problem for each signal refused."""

    accepted: list[str] = Field(description="Signal ids, in request order")
    rejected: list[ProblemDetails] = Field(description="One problem per refused signal")


class FeedPage(BaseModel):
    """Messages of the caller's feed after the cursor, and the cursor to ask for next."""

    messages: list[dict[str, Any]]
    cursor: str = Field(description="Opaque; pass it back as ?cursor= for the next page")
