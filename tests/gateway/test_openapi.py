"""The OpenAPI document: served at /v1/openapi.json and checked in as docs/openapi.json."""

from __future__ import annotations

import json

import pytest

from services.config import ROOT
from services.gateway.document import openapi_document

pytestmark = pytest.mark.timeout(30)

CHECKED_IN = ROOT / "docs" / "openapi.json"


def test_the_served_document_is_the_checked_in_one(http):
    served = http.get("/v1/openapi.json")
    assert served.status_code == 200
    assert served.json() == json.loads(CHECKED_IN.read_text(encoding="utf-8")), (
        "regenerate: schakel gateway openapi > docs/openapi.json"
    )


def test_the_checked_in_document_is_byte_for_byte_what_the_command_prints():
    assert CHECKED_IN.read_text(encoding="utf-8") == openapi_document()


def test_the_document_describes_the_api():
    document = json.loads(openapi_document())
    assert set(document["paths"]) == {"/v1/signals", "/v1/feed", "/v1/feed/events"}
    post = document["paths"]["/v1/signals"]["post"]
    assert {"401", "409", "413", "422", "429", "503"} <= set(post["responses"])
    assert "Envelope" in document["components"]["schemas"]
    assert document["components"]["securitySchemes"]["token"]["scheme"] == "bearer"
