"""Wave overrides merge as docs/crosswalk.md says (the audit's finding F3-2): a `map` on a table rule keeps the
table — it was replacing the rule, so `{map: {"01": DDDE}}` failed for want of a source and
`{source: v307b, map: {40: AT}, quality: exact}` silently left some 250 codes of the table unmapped; only
`table: null` drops a table's codes."""

from __future__ import annotations

from pathlib import Path

from conftest import ROOT, edit, line_of, run

from harmonise.spec.crosswalk import Rule, merge_override
from harmonise.spec.project import Project, load_project
from harmonise.spec.resolve import TargetPlan, resolve_wave, without_override

TABLE = Rule(source="cntbrthc", table="ess_country_codes", quality="exact", notes="legacy codes")
MAP = Rule(source="gndr", map={1: "male", 2: "female"}, quality="exact", notes="by code")


def test_a_map_on_a_table_rule_keeps_the_table_source_and_quality() -> None:
    assert merge_override(TABLE, {"map": {"01": "DDDE"}}) == {
        "source": "cntbrthc", "table": "ess_country_codes", "quality": "exact", "notes": "legacy codes",
        "map": {"01": "DDDE"}}
    assert merge_override(TABLE, {"source": "v305", "map": {40: "AT"}, "quality": "exact"}) == {
        "source": "v305", "table": "ess_country_codes", "quality": "exact", "notes": "legacy codes",
        "map": {40: "AT"}}


def test_a_field_set_to_null_is_dropped() -> None:
    assert merge_override(TABLE, {"table": None, "map": {1: "AT"}}) == {
        "source": "cntbrthc", "quality": "exact", "notes": "legacy codes", "map": {1: "AT"}}
    assert merge_override(MAP, {"map": None, "range": [1, 2]}) == {
        "source": "gndr", "quality": "exact", "notes": "by code", "range": [1, 2]}


def test_a_new_kind_still_replaces_the_rule_keeping_its_notes() -> None:
    assert merge_override(MAP, {"expr": "gndr == 1", "quality": "recoded"}) == {
        "notes": "by code", "expr": "gndr == 1", "quality": "recoded"}
    asked = Rule(not_asked="Not in this survey.", notes="why")
    assert merge_override(asked, {"source": "v1", "map": {1: "male"}, "quality": "exact"}) == {
        "notes": "why", "source": "v1", "map": {1: "male"}, "quality": "exact"}
    assert merge_override(MAP, None) == MAP.model_dump(exclude_none=True)


YEAR_8 = '    overrides:\n      year: {expr: "coalesce(inwyys, 2016)"'


def _override_wave_8(path: Path, rule: str) -> None:
    """Write ``rule`` (one line: ``target: {...}``) first among ESS round 8's overrides."""
    edit(path, YEAR_8, f'    overrides:\n      {rule}\n      year: {{expr: "coalesce(inwyys, 2016)"')


def _validated_plan(project: Path, path: Path, survey: str, wave: str, target: str) -> tuple[TargetPlan, Project]:
    """``validate`` of the edited crosswalk passes; the target's plan in the wave, and the project loaded."""
    code, out, err = run("validate", str(path), project=project)
    assert (code, out, err) == (0, "ok: 0 error(s), 0 warning(s)\n", "")
    loaded = load_project(project, [path])
    assert loaded.schema is not None
    cw = loaded.crosswalks[survey]
    return resolve_wave(cw, next(w for w in cw.waves if w.wave == wave), loaded.schema, loaded.tables).targets[target], \
        loaded


def test_a_map_override_on_a_table_rule_validates_and_keeps_the_table(project: Path) -> None:
    path = project / "mappings" / "ess.yaml"
    _override_wave_8(path, 'country_of_birth: {map: {"01": DDDE}}')
    plan, loaded = _validated_plan(project, path, "ess", "8", "country_of_birth")
    assert (plan.kind, plan.source, plan.table, plan.quality) == ("table", "cntbrthc", "ess_country_codes", "exact")
    assert loaded.schema is not None
    cw = loaded.crosswalks["ess"]
    table = without_override(cw, next(w for w in cw.waves if w.wave == "8"), "country_of_birth", loaded.schema,
                             loaded.tables)
    assert table is not None and len(table.values) > 250
    assert plan.values == {**table.values, "01": "DDDE"}  # the table has it: the override changes nothing


def test_diff_of_a_map_override_on_a_table_rule_shows_no_change_of_kind(project: Path) -> None:
    path = project / "mappings" / "ess.yaml"
    _override_wave_8(path, 'country_of_birth: {map: {"01": DDDE}}')
    code, out, err = run("diff", str(ROOT / "mappings" / "ess.yaml"), str(path), project=project)
    assert (code, err) == (0, "")
    assert out == f"ess: no changes between {ROOT / 'mappings' / 'ess.yaml'} and {path}\n"  # was kind table → map


def test_an_override_leaving_two_kinds_names_the_field_to_drop(project: Path) -> None:
    path = project / "mappings" / "ess.yaml"
    deciles = "{" + ", ".join(f"{i}: {i}" for i in range(1, 11)) + "}"
    _override_wave_8(path, f"income_decile: {{map: {deciles}}}")
    code, _, err = run("validate", str(path), project=project)
    assert code == 1
    assert err.splitlines()[0] == (
        f"error: mappings/ess.yaml:{line_of(path, 'income_decile: {map:')} waves[8].overrides.income_decile: rule "
        "mixes kinds range, map: give exactly one — the override keeps the base rule's `range` (an override with map, "
        "range or table replaces only the fields it sets): write `range: null` in the override to drop it")
    edit(path, "income_decile: {map:", "income_decile: {range: null, map:")
    code, out, err = run("validate", str(path), project=project)
    assert (code, out, err) == (0, "ok: 0 error(s), 0 warning(s)\n", "")


def test_the_eumidis_wave_i_country_map_replaces_the_table_as_written() -> None:
    loaded = load_project(ROOT)
    assert loaded.schema is not None
    cw = loaded.crosswalks["eumidis"]
    plans = {w.wave: resolve_wave(cw, w, loaded.schema, loaded.tables).targets["country"] for w in cw.waves}
    assert (plans["I"].kind, plans["I"].table, len(plans["I"].values)) == ("map", None, 27)
    assert (plans["II"].kind, plans["II"].table) == ("table", "eumidis_country_codes")


def test_a_source_and_map_override_on_an_evs_table_rule_keeps_every_code_of_the_table(project: Path) -> None:
    """The audit's EVS case: accepted, and it dropped the table (about 250 codes unmapped, seen only on real data)."""
    path = project / "mappings" / "evs.yaml"
    edit(path, "      country_of_birth:\n        source: v307b\n",
         "      country_of_birth:\n        source: v307b\n        map: {40: AT}\n        quality: exact\n")
    plan, loaded = _validated_plan(project, path, "evs", "2008", "country_of_birth")
    assert (plan.kind, plan.source, plan.table) == ("table", "v307b", "evs_country_codes")
    table = loaded.tables.code_map("evs_country_codes")
    assert table is not None and len(table.normalised_map()) > 250
    assert plan.values == {**table.normalised_map(), 40: "AT"}
