"""A covered survey's rules as scaffold candidates: one entry per distinct rule, with its waves."""

from __future__ import annotations

from harmonise.authoring.known import known_rules, span
from harmonise.spec.crosswalk import merge_override
from harmonise.spec.project import load_project
from tests.conftest import ROOT


def test_span() -> None:
    assert span(["1", "2", "3", "5", "7", "8"]) == "1-3, 5, 7-8"
    assert span(["2008"]) == "2008"
    assert span(["I", "II"]) == "I, II"


def test_every_wave_is_in_exactly_one_distinct_rule() -> None:
    cw = load_project(ROOT, [ROOT / "mappings" / "ess.yaml"]).crosswalks["ess"]
    waves = [w.wave for w in cw.waves]
    for target in cw.targets:
        rules = known_rules(cw, target)
        assert sorted(w for r in rules for w in r.waves) == sorted(waves), target
        assert len({str(sorted(r.rule.items(), key=str)) for r in rules}) == len(rules), target
    cob = known_rules(cw, "country_of_birth")
    # the rule of each wave is that wave's base rule with its override applied
    for r in cob:
        for w in r.waves:
            merged = merge_override(cw.targets["country_of_birth"], cw.wave(w).overrides.get("country_of_birth"))
            assert {k: v for k, v in merged.items() if k != "notes"} == {k: v for k, v in r.rule.items() if k != "notes"}
    assert [r.describe().split(":")[0] for r in cob] == ["wave 1", "waves 2-3", "waves 4-5", "waves 6-8", "waves 9-11"]


def test_the_wave_named_gives_its_rule_only() -> None:
    cw = load_project(ROOT, [ROOT / "mappings" / "ess.yaml"]).crosswalks["ess"]
    (only,) = known_rules(cw, "country_of_birth", "9")
    assert (only.waves, only.rule["source"]) == (("9",), "cntbrthd")
