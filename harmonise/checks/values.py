"""What a valid value of each schema variable type is: one table (:func:`value_rules`), read by the
static checks (a code in a crosswalk's map, a constant) and by the pandera schema of harmonised rows
(:mod:`harmonise.checks.frame`)."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

from harmonise.spec.codetables import TableSet
from harmonise.spec.schema import Variable

RuleKind = Literal["codes", "range", "whole", "pattern", "type"]


@dataclass(frozen=True)
class ValueRule:
    """One condition on a value of a variable.

    ``kind`` says how the condition is tested: ``codes`` (one of ``codes``), ``range``
    (within ``bounds``), ``whole`` (a whole number), ``pattern`` (a regular expression at the
    start of the text) or ``type`` (a value of the variable's type: ``bool``, ``number`` or
    ``text``, which a typed column guarantees). ``name`` names the check in failure cases.
    """

    variable: Variable
    kind: RuleKind
    name: str
    codes: tuple[str, ...] = ()
    bounds: tuple[float, float] = (0.0, 0.0)
    pattern: str = ""
    type: str = ""
    source: str = ""  # where the codes are declared, for messages

    @cached_property
    def _code_set(self) -> frozenset[str]:
        return frozenset(self.codes)

    def accepts(self, v: object) -> bool:
        number = isinstance(v, (int, float)) and not isinstance(v, bool)
        if self.kind == "codes":
            return isinstance(v, str) and v in self._code_set
        if self.kind == "range":
            return number and self.bounds[0] <= v <= self.bounds[1]  # type: ignore[operator]
        if self.kind == "whole":
            return number and float(v).is_integer()  # type: ignore[arg-type]
        if self.kind == "pattern":
            return isinstance(v, str) and re.match(self.pattern, v) is not None
        return {"bool": isinstance(v, bool), "number": number, "text": isinstance(v, str)}[self.type]

    def why(self, v: object) -> str:
        """What is wrong with ``v`` (a value this rule does not accept)."""
        var = self.variable
        if self.kind == "codes" and self.source:
            return f"{v!r} is not a {self.name} of {self.source}"
        if self.kind == "codes":
            close = difflib.get_close_matches(str(v), list(self.codes), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else f" (codes: {', '.join(self.codes)})"
            return f"{v!r} is not a code of {var.name}{hint}"
        if self.kind == "range":
            return f"{v!r} is outside {var.name}'s range [{self.bounds[0]:g}, {self.bounds[1]:g}]"
        if self.kind == "whole":
            return f"{v!r} is not a whole number"
        if self.kind == "pattern":
            return f"{v!r} does not match {var.name}'s pattern {self.pattern}"
        if self.type == "bool":
            return f"{v!r} is not true/false ({var.name} is boolean)"
        if self.type == "number":
            return f"{v!r} is not a number ({var.name} is {var.type})"
        return f"{v!r} is not text"


_REFERENCE = {"country": ("country code", "mappings/tables/countries.yaml"),
              "language": ("language code", "mappings/tables/languages.yaml"),
              "city": ("city code", "mappings/cities.yaml")}


_RULES: dict[tuple[int, int], tuple[Variable, TableSet, list[ValueRule]]] = {}


def value_rules(var: Variable, tables: TableSet) -> list[ValueRule]:
    """The conditions a value of ``var`` must meet, in the order they are tested (cached per variable)."""
    key = (id(var), id(tables))
    hit = _RULES.get(key)
    if hit is None or hit[0] is not var or hit[1] is not tables:
        hit = _RULES[key] = (var, tables, _rules(var, tables))
    return hit[2]


def _rules(var: Variable, tables: TableSet) -> list[ValueRule]:
    t = var.type
    if t == "category":
        return [ValueRule(var, "codes", f"{var.name} code", codes=tuple(var.codes or {}))]
    if t == "boolean":
        return [ValueRule(var, "type", "true/false", type="bool")]
    if t in ("integer", "number"):
        rules = [ValueRule(var, "type", "number", type="number")]
        if t == "integer":
            rules.append(ValueRule(var, "whole", "whole number"))
        if var.range:
            lo, hi = var.range
            rules.append(ValueRule(var, "range", f"range [{lo:g}, {hi:g}]", bounds=(lo, hi)))
        return rules
    if t in _REFERENCE:
        codes = {"country": tables.country_codes, "language": tables.language_codes, "city": tables.city_codes}[t]
        name, where = _REFERENCE[t]
        return [ValueRule(var, "codes", name, codes=tuple(sorted(codes)), source=where)] if codes else []
    rules = [ValueRule(var, "type", "text", type="text")]
    if var.pattern:
        rules.append(ValueRule(var, "pattern", f"pattern {var.pattern}", pattern=var.pattern))
    return rules


def value_ok(var: Variable, value: object, tables: TableSet) -> str | None:
    """None when ``value`` is a valid target value of ``var``, else why not."""
    for rule in value_rules(var, tables):
        if not rule.accepts(value):
            return rule.why(value)
    return None
