"""A covered survey's rules as scaffold candidates: one entry per distinct rule, with its waves."""

from __future__ import annotations

from harmonise.authoring.known import known_rules, span
from harmonise.spec.project import load_project
from harmonise.spec.resolve import wave_rules
from tests.conftest import ROOT


def test_span() -> None:
    assert span(["1", "2", "3", "5", "7", "8"]) == "1-3, 5, 7-8"
    assert span(["2008"]) == "2008"
    assert span(["I", "II"]) == "I, II"


def test_every_wave_is_in_exactly_one_distinct_rule() -> None:
    project = load_project(ROOT, [ROOT / "mappings" / "ess.yaml"])
    cw = project.crosswalks["ess"]
    assert project.schema is not None
    waves = [w.wave for w in cw.waves]
    for target in cw.targets:
        rules = known_rules(cw, target)
        assert sorted(w for r in rules for w in r.waves) == sorted(waves), target
        assert len({str(sorted(r.rule.items(), key=str)) for r in rules}) == len(rules), target
    cob = known_rules(cw, "country_of_birth")
    # the rule of each wave is that wave's base rule with the periods' and its own overrides applied
    for r in cob:
        for w in r.waves:
            at = next(a for a in wave_rules(cw, cw.wave(w), project.schema) if a.target == "country_of_birth")
            assert at.rule is not None
            merged = at.rule.model_dump(exclude_none=True)
            assert {k: v for k, v in merged.items() if k != "notes"} == {k: v for k, v in r.rule.items() if k != "notes"}
    # round 6 names the round-5 variables as alternatives (editions before 2.4)
    assert [r.describe().split(":")[0] for r in cob] == ["wave 1", "waves 2-3", "waves 4-5", "wave 6", "waves 7-8",
                                                        "waves 9-11"]


def test_the_wave_named_gives_its_rule_only() -> None:
    cw = load_project(ROOT, [ROOT / "mappings" / "ess.yaml"]).crosswalks["ess"]
    (only,) = known_rules(cw, "country_of_birth", "9")
    assert (only.waves, only.rule["source"]) == (("9",), "cntbrthd")
