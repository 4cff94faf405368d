"""The JSON Schema of covenant files, generated from the model so the two never drift.

``schemas/covenant.schema.json`` is this function's output (a test keeps them equal); editors
use it to validate and complete covenant YAML.
"""

from __future__ import annotations

from typing import Any

from services.core.covenant.model import Covenant

SHARE_PATTERN = r"^(keep|plain|pseudonymise|generalise:(postcode4|hour|day|week|month|year|band:[0-9]+(\.[0-9]+)?))$"


def covenant_json_schema() -> dict[str, Any]:
    schema = Covenant.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "urn:schakel:covenant"
    schema["title"] = "Schakel covenant"
    schema["description"] = (
        "One version of one covenant: parties, regions and the rules that allow exchange. "
        "Grammar and examples: docs/covenants.md."
    )
    rule = schema["$defs"]["Rule"]["properties"]
    rule["share"]["additionalProperties"] = {"type": "string", "pattern": SHARE_PATTERN}
    rule["when"]["description"] = "A CEL condition over data, source, type, time and regions."
    return schema
