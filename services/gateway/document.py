"""The gateway's OpenAPI document as text: what ``/v1/openapi.json`` serves, formatted the way
docs/openapi.json is checked in (``schakel gateway openapi > docs/openapi.json``)."""

from __future__ import annotations

import orjson

from services.gateway.app import build_app


def openapi_document() -> str:
    document = build_app().openapi()
    return orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode() + "\n"
