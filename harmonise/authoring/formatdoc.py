"""The key reference of ``docs/crosswalk.md``, generated from the crosswalk model.

Every key a crosswalk file may hold is a field of a pydantic model in
:mod:`harmonise.spec.crosswalk`, and every field carries a ``description=``. This module renders
those models as Markdown tables (key, type, required or default, constraints, description) and
splices them into ``docs/crosswalk.md`` between two marker lines, so the page cannot drift from
the model: ``tests/test_authoring_formatdoc.py`` fails when the committed section differs from
the generated one. Regenerate with ``python -m harmonise.authoring.formatdoc``.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from annotated_types import Ge, Le, MaxLen, MinLen
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from harmonise.spec.crosswalk import Crosswalk, MissingDefaults, Period, Rule, Wave

DOC_PATH = Path("docs") / "crosswalk.md"
BEGIN = "<!-- BEGIN generated key reference: python -m harmonise.authoring.formatdoc -->"
END = "<!-- END generated key reference -->"
MODELS: tuple[type[BaseModel], ...] = (Crosswalk, MissingDefaults, Wave, Period, Rule)
SECTION = {Crosswalk: "The file", MissingDefaults: "`missing`", Wave: "`waves[]`", Period: "`periods[]`",
           Rule: "`targets.<target>`"}
SCALARS = {str: "text", int: "integer", float: "number", bool: "boolean", Any: "any"}
CODE = frozenset({int, float, str})  # harmonise.spec.crosswalk.Code
VALUE = frozenset({bool, int, float, str})  # harmonise.spec.crosswalk.TargetValue


def type_name(annotation: Any) -> str:
    """A reader's name for a field type: ``dict[Code, str] | None`` → ``mapping code → text``."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, types.UnionType):
        members = [a for a in args if a is not type(None)]
        if VALUE <= set(members):
            return " or ".join(["value (boolean, number or text)", *(type_name(a) for a in members if a not in VALUE)])
        if CODE <= set(members):
            return " or ".join(["code (number or text)", *(type_name(a) for a in members if a not in CODE)])
        return " or ".join(type_name(a) for a in members)
    if origin is Literal:
        return ", ".join(f"`{a}`" for a in args)
    if origin is dict:
        return f"mapping {type_name(args[0])} → {type_name(args[1])}"
    if origin is list:
        return f"list of {type_name(args[0])}"
    if origin is tuple:
        return "[" + ", ".join(type_name(a) for a in args) + "]"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"[{SECTION[annotation].strip('`')}](#{anchor(annotation)})"
    return SCALARS.get(annotation, getattr(annotation, "__name__", str(annotation)))


def anchor(model: type[BaseModel]) -> str:
    """The GitHub anchor of a model's heading."""
    text = SECTION[model].lower()
    return "".join(c for c in text.replace(" ", "-") if c.isalnum() or c in "-_")


def constraints(info: FieldInfo) -> str:
    """Pattern, bounds and length limits of a field, in words."""
    out = []
    for m in info.metadata:
        if isinstance(m, Ge):
            out.append(f"≥ {m.ge}")
        elif isinstance(m, Le):
            out.append(f"≤ {m.le}")
        elif isinstance(m, MinLen):
            out.append(f"at least {m.min_length} item(s)")
        elif isinstance(m, MaxLen):
            out.append(f"at most {m.max_length} item(s)")
        elif getattr(m, "pattern", None):
            out.append(f"matches `{m.pattern}`")
    return "; ".join(out)


def default(info: FieldInfo) -> str:
    """``required``, or the default a missing key takes."""
    if info.is_required():
        return "required"
    if info.default_factory is not None:
        value = info.default_factory()  # type: ignore[call-arg]
        if isinstance(value, BaseModel):
            return "optional (each key its default)"
        return "optional (empty)" if not value else f"optional ({value!r})"
    if info.default is None or info.default is PydanticUndefined:
        return "optional"
    return f"optional (`{info.default}`)"


def cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def model_table(model: type[BaseModel]) -> str:
    """One model as a heading, its docstring's first line and a table of its keys."""
    lines = [f"### {SECTION[model]}", "", (model.__doc__ or "").strip().splitlines()[0], "",
             "| key | type | required | constraints | meaning |", "|---|---|---|---|---|"]
    for name, info in model.model_fields.items():
        key = info.alias or name
        lines.append(f"| `{key}` | {cell(type_name(info.annotation))} | {default(info)} | "
                     f"{cell(constraints(info))} | {cell(info.description or '')} |")
    return "\n".join(lines)


def reference() -> str:
    """The generated section, markers included."""
    body = "\n\n".join(model_table(m) for m in MODELS)
    return f"{BEGIN}\n\n{body}\n\n{END}"


def splice(page: str) -> str:
    """``page`` with its generated section replaced by the current one."""
    start, end = page.find(BEGIN), page.find(END)
    if start < 0 or end < start:
        raise ValueError(f"{DOC_PATH} lacks the marker lines {BEGIN!r} … {END!r}")
    return page[:start] + reference() + page[end + len(END):]


def main(root: Path = Path(".")) -> int:
    path = root / DOC_PATH
    path.write_text(splice(path.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
