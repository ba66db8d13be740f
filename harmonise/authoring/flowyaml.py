"""One-line YAML (flow style) for generated crosswalk text.

Generated rules are written one per line (``sex: {source: gndr, map: {1: male, 2: female}}``)
so that an author edits a whole rule by editing one line, and a diff shows one line per rule.
Strings that YAML would read as something else (``yes``, ``8``, ``null``, ``a: b``) are
double-quoted; JSON string escapes are valid YAML double-quoted escapes.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
YAML_WORDS = frozenset(["y", "n", "yes", "no", "true", "false", "on", "off", "null"])
# characters YAML does not allow in a document, and its line breaks NEL, LS and PS (JSON escapes C0 controls)
NON_PRINTABLE = re.compile("[^\t\n\r\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def scalar(value: Any) -> str:
    """A YAML scalar that loads back to ``value`` (bool, int, float, str or None)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        text = repr(value)
        mantissa, _, exponent = text.partition("e")
        if "." not in mantissa:  # YAML 1.1 reads 1e+20 as a string: it needs 1.0e+20
            mantissa += ".0"
        return mantissa + (f"e{exponent}" if exponent else "")
    text = str(value)
    if PLAIN.fullmatch(text) and text.lower() not in YAML_WORDS and not text.endswith(("-", ".")):
        return text
    return NON_PRINTABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(text, ensure_ascii=False))


def flow(value: Any) -> str:
    """``value`` (dicts, lists, tuples and scalars) as one line of flow-style YAML."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{scalar(k)}: {flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(flow(v) for v in value) + "]"
    return scalar(value)
