"""The JSON Schema of crosswalk files, generated from the pydantic model that validates them.

Editors (yaml-language-server, VS Code, JetBrains) read it through the first line of every
crosswalk, ``# yaml-language-server: $schema=../schemas/crosswalk.schema.json``, to complete
and check keys. The model already forbids unknown keys (``additionalProperties: false``); on
top of it the schema names the target variables of ``mappings/schema.yaml`` so that a
misspelt target is flagged while typing, and types wave overrides as partial rules.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harmonise.spec.crosswalk import Crosswalk
from harmonise.spec.schema import TargetSchema

SCHEMA_PATH = Path("schemas") / "crosswalk.schema.json"
MODELINE = "# yaml-language-server: $schema=../schemas/crosswalk.schema.json"


def crosswalk_json_schema(schema: TargetSchema | None = None) -> dict[str, Any]:
    """The crosswalk JSON Schema (draft 2020-12); ``schema`` adds the target names."""
    out = Crosswalk.model_json_schema(by_alias=True, mode="validation")
    defs = out["$defs"]
    rule_ref = {"$ref": "#/$defs/Rule"}
    # A wave override is a partial rule: every Rule field is optional, so the Rule shape fits.
    defs["Wave"]["properties"]["overrides"]["additionalProperties"] = {"anyOf": [rule_ref, {"type": "null"}]}
    out["properties"]["$schema"].update({"description": "Path or URL of this JSON Schema (for editors)."})
    if schema is not None:
        names = schema.names
        targets = out["properties"]["targets"]
        targets["properties"] = {v.name: {"$ref": "#/$defs/Rule", "description": f"{v.label} ({v.type})"}
                                 for v in schema.variables}
        targets["additionalProperties"] = False
        overrides = defs["Wave"]["properties"]["overrides"]
        overrides["propertyNames"] = {"enum": names}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **out}


def render(schema: dict[str, Any]) -> str:
    """Stable text form (the committed file is compared byte for byte)."""
    return json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def jsonable(data: Any) -> Any:
    """YAML data as JSON would carry it: mapping keys become strings (``1: male`` → ``"1"``)."""
    if isinstance(data, dict):
        return {str(k): jsonable(v) for k, v in data.items()}
    if isinstance(data, list):
        return [jsonable(v) for v in data]
    return data
