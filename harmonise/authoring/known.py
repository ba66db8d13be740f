"""Rules a covered survey's crosswalk already knows, as candidates for a new file of that survey.

Every wave of a crosswalk puts one rule in force per target (the base rule with the wave's
override applied). For a new file the distinct rules of all waves (or of the one wave named)
are the candidates; :mod:`harmonise.authoring.scaffold` keeps those the file supports — their
variables present, their codes and labels agreeing — and, where several fit, the rule of the
waves the file fits best (a round-9 file holds ``anweight`` *and* ``pspwght``/``pweight``: the
wave-9 rule wins because the round-9 rules fit the file best overall).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from harmonise.spec.crosswalk import Crosswalk, Rule, merge_override
from harmonise.spec.resolve import override_layers


@dataclass(frozen=True)
class KnownRule:
    """One distinct rule of a crosswalk for one target, and the waves that use it (crosswalk order)."""

    target: str
    rule: dict[str, Any]
    waves: tuple[str, ...]

    @property
    def kind(self) -> str:
        for k in ("not_asked", "expr", "constant", "table", "map", "range"):
            if k in self.rule:
                return k
        return "none"

    def describe(self) -> str:
        """``waves 2-3: cntbrtha via ess_country_codes`` (short, for TODO text)."""
        r = self.rule
        what = {"not_asked": lambda: "not_asked", "expr": lambda: f"expr {r['expr']}",
                "constant": lambda: f"constant {r['constant']!r}", "table": lambda: f"{r.get('source')} via {r['table']}",
                "map": lambda: f"{r.get('source')} mapped", "range": lambda: f"{r.get('source')} in {r['range']}",
                "none": lambda: "no kind"}[self.kind]()
        return f"wave{'s' if len(self.waves) > 1 else ''} {span(self.waves)}: {what}"


def span(waves: Iterable[str]) -> str:
    """``1, 2, 3, 5`` → ``1-3, 5`` for numeric runs; other ids listed as they are."""
    ws = list(waves)
    if not all(w.isdigit() for w in ws):
        return ", ".join(ws)
    nums, out, start = sorted(int(w) for w in ws), [], None
    for i, n in enumerate(nums):
        start = n if start is None else start
        if i + 1 == len(nums) or nums[i + 1] != n + 1:
            out.append(f"{start}" if start == n else f"{start}-{n}")
            start = None
    return ", ".join(out)


def known_rules(cw: Crosswalk, target: str, only_wave: str | None = None) -> list[KnownRule]:
    """The distinct rules ``cw`` puts in force for ``target`` (in the order first used), with their waves."""
    seen: dict[str, tuple[dict[str, Any], list[str]]] = {}
    for wave in cw.waves:
        if only_wave is not None and wave.wave != only_wave:
            continue
        layered = cw.targets.get(target)
        rule: dict[str, Any] | None = layered.model_dump(exclude_none=True) if layered is not None else None
        for _, overrides in override_layers(cw, wave):  # the periods naming the wave, then the wave
            if target in overrides:
                rule = merge_override(layered, overrides[target])
                try:
                    layered = Rule.model_validate(rule)
                except ValidationError:
                    layered = None
        if rule is None:
            continue
        if isinstance(rule.get("range"), (list, tuple)):  # as written: [0, 10], not (0.0, 10.0)
            rule["range"] = [int(x) if float(x).is_integer() else x for x in rule["range"]]
        key = json.dumps({k: v for k, v in rule.items() if k != "notes"}, sort_keys=True, default=str)
        seen.setdefault(key, (rule, []))[1].append(wave.wave)
    return [KnownRule(target, rule, tuple(waves)) for rule, waves in seen.values()]
