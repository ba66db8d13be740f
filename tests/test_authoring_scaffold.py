"""`harmonise scaffold`: a draft crosswalk that validates once its TODO lines are resolved."""

from __future__ import annotations

import re
import shutil
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harmonise.authoring.draft_quality import agreement
from harmonise.authoring.flowyaml import flow
from harmonise.authoring.scaffold import Draft, infer_missing, render, scaffold
from harmonise.authoring.similarity import missing_reason
from harmonise.spec.crosswalk import Crosswalk, Rule, merge_override
from harmonise.spec.project import Project, load_project
from harmonise.spec.source import SourceMeta, VarMeta
from harmonise.spec.yamlload import load_yaml_text
from tests.conftest import ESS8_SAID, ROOT, run

TARGET_LINE = re.compile(r"^(\s*)([a-z0-9_]+): ")


@pytest.fixture(scope="module")
def scaffolded(tmp_path_factory: pytest.TempPathFactory, ess8: Path) -> tuple[Path, str, str]:
    """A project copy whose ess.yaml is the scaffold of the real ESS8 file (via the CLI)."""
    proj = tmp_path_factory.mktemp("scaffold") / "proj"
    shutil.copytree(ROOT / "mappings", proj / "mappings")
    shutil.copytree(ROOT / "surveys", proj / "surveys")
    out = proj / "mappings" / "ess.yaml"
    out.unlink()
    code, stdout, err = run("scaffold", str(ess8), "--survey", "ess", "--wave", "8", "--out", str(out), project=proj)
    assert code == 0 and stdout == ""
    return proj, out.read_text(encoding="utf-8"), err


@pytest.fixture(scope="module")
def draft(ess8: Path) -> Draft:
    return scaffold(ROOT, ess8, "ess", "8", known=False, project=declarations())


@lru_cache(maxsize=1)
def declarations() -> Project:
    """The repository's declarations, loaded once per process and handed to every scaffold call (``project``):
    drafting reads them, never changes them."""
    return load_project(ROOT)


@lru_cache(maxsize=1)
def shipped() -> Crosswalk:
    return load_project(ROOT, [ROOT / "mappings" / "ess.yaml"]).crosswalks["ess"]


def shipped_rule(name: str) -> dict[str, Any]:
    """The shipped ESS crosswalk's round-8 rule for ``name``, overrides applied."""
    cw = shipped()
    wave = cw.wave("8")
    if name in wave.overrides:
        return merge_override(cw.targets.get(name), wave.overrides[name])
    return cw.targets[name].model_dump(exclude_none=True)


def test_todo_lines_fail_validation_with_their_line(scaffolded: tuple[Path, str, str], draft: Draft) -> None:
    proj, text, err = scaffolded
    todo_lines = [i for i, ln in enumerate(text.splitlines(), 1) if "TODO" in ln and not ln.lstrip().startswith("#")]
    assert err == f"{proj / 'mappings' / 'ess.yaml'}: {len(draft.targets)} target(s), {len(todo_lines)} TODO line(s) to resolve\n"
    assert len(todo_lines) == draft.todos == 31
    code, out, _ = run("validate", str(proj / "mappings" / "ess.yaml"), "--format", "github", project=proj)
    assert code == 1
    annotated = [int(m.group(1)) for m in re.finditer(r"line=(\d+),", out)]
    assert annotated == todo_lines
    assert "targets.sex.TODO" not in out and "title=harmonise todo::targets.urbanisation.TODO: unresolved TODO: " in out


def test_completing_only_the_todo_lines_gives_a_valid_crosswalk(scaffolded: tuple[Path, str, str], ess8: Path) -> None:
    proj, text, _ = scaffolded
    year = shipped().wave("8").year
    lines = []
    for line in text.splitlines():
        if "TODO" in line and not line.lstrip().startswith("#"):
            indent, key = TARGET_LINE.match(line).groups()  # type: ignore[union-attr]
            line = f"{indent}year: {year}" if key == "year" else f"{indent}{key}: {flow(shipped_rule(key))}"
        lines.append(line)
    path = proj / "mappings" / "ess.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, out, err = run("validate", str(path), "--data", str(ess8.parent), project=proj)
    assert (code, err) == (0, "")
    assert out.splitlines() == ESS8_SAID


def test_clear_rules_are_written_without_todo(draft: Draft) -> None:
    certain = {t.variable.name: t.rule for t in draft.targets if t.todo is None}
    assert certain["sex"] == {"source": "gndr", "map": {1: "male", 2: "female"}, "quality": "exact"}
    assert certain["voted_national"] == {"source": "vote", "map": {1: "yes", 2: "no", 3: "not_eligible"},
                                         "quality": "exact"}
    assert certain["life_satisfaction"] == {"source": "stflife", "range": [0, 10], "quality": "exact"}
    assert certain["country_of_birth"] == {"source": "cntbrthc", "table": "ess_country_codes", "quality": "exact"}
    for name, rule in certain.items():  # every certain rule names the source the shipped crosswalk uses
        assert rule["source"] == shipped_rule(name)["source"], name
    assert draft.missing.codes == {
        "not_applicable": [6, 66, 666, 6666, 66666, "66", "ZXX"],
        "refused": [7, 77, 777, 7777, 77777, 777777, "77", "777"],
        "dont_know": [8, 88, 888, 8888, 88888, 888888, "88", "888"],
        "no_answer": [9, 99, 999, 9999, 99999, 999999, "99", "999"],
    }


def test_top_ranked_candidate_agrees_with_the_shipped_crosswalk(draft: Draft) -> None:
    proj = load_project(ROOT, [ROOT / "mappings" / "ess.yaml"])
    hits, total, missed = agreement(draft, proj, "ess", "8")
    assert (hits, total) == (34, 40)
    assert missed == ["respondent_id", "region_nuts", "city", "education_isced", "main_activity", "labour_status"]
    assert agreement(draft, proj, "ess", "8", k=3)[:2] == (37, 40)


@pytest.mark.parametrize("label,reason", [
    ("Refusal", "refused"), ("Don't know", "dont_know"), ("DON’T KNOW", "dont_know"), ("No answer", "no_answer"),
    ("Not applicable", "not_applicable"), ("Not available", "not_available"), ("Item not included", "not_asked"),
    ("Yes", None), ("No", None), ("Not at all", None), ("Know a lot", None),
])
def test_missing_labels(label: str, reason: str | None) -> None:
    assert missing_reason(label) == reason


def test_missing_defaults_need_declared_or_edge_codes() -> None:
    meta = SourceMeta("x", {
        "a": VarMeta("a", labels={1: "Yes", 2: "No", 8: "Don't know"}),
        "b": VarMeta("b", labels={1: "Don't know", 2: "Maybe"}),  # 1 is not where missing codes sit
        "c": VarMeta("c", labels={1: "Yes", 8: "Don't know", 9: "No answer"}, missing_values=[9]),
        "d": VarMeta("d", type="string", labels={"88": "Don't know", "AT": "Austria"}),
    })
    d = infer_missing(meta)
    assert d.codes == {"dont_know": [8]}  # one-off codes (9, '88') are left to the rules


KEYS = st.one_of(st.integers(-10_000, 10_000), st.text(max_size=12))
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.text(max_size=20),
                    st.floats(allow_nan=False, allow_infinity=False))


@given(st.dictionaries(KEYS, st.one_of(SCALARS, st.lists(SCALARS, max_size=3),
                                       st.dictionaries(KEYS, SCALARS, max_size=3)), max_size=5))
def test_flow_yaml_round_trips(value: dict[Any, Any]) -> None:
    loaded = load_yaml_text(f"rule: {flow(value)}\n", "t.yaml")
    assert loaded.issues == []
    assert loaded.data == {"rule": value}


def test_scaffold_usage_errors(ess8: Path, tmp_path: Path) -> None:
    code, _, err = run("scaffold", str(ess8), "--survey", "ESS", "--wave", "8")
    assert (code, err) == (2, "error: survey name 'ESS' must be lower case letters, digits and _ (e.g. ess, eumidis)\n")
    code, _, err = run("scaffold", str(ess8), "--survey", "ess", "--wave", "round 8")
    assert (code, err) == (2, "error: wave 'round 8' must be 1-16 letters, digits, '_', '.' or '-' (e.g. 8, 2017, II)\n")
    existing = tmp_path / "x.yaml"
    existing.write_text("keep me\n", encoding="utf-8")
    code, _, err = run("scaffold", str(ess8), "--survey", "ess", "--wave", "8", "--out", str(existing))
    assert (code, err) == (2, f"error: {existing} exists; pass --force to overwrite it\n")
    assert existing.read_text(encoding="utf-8") == "keep me\n"


def test_harmonise_checks_have_the_last_word(tmp_path: Path) -> None:
    """Labels match perfectly, but the data hold an unlabelled code: the rule stays TODO."""
    import pandas as pd
    import pyreadstat

    path = tmp_path / "tiny.sav"
    df = pd.DataFrame({"gender": [1.0, 2.0, 3.0, 1.0], "trust_parl": [0.0, 10.0, 5.0, 99.0]})
    pyreadstat.write_sav(df, str(path), column_labels=["Gender", "Trust in parliament"],
                         variable_value_labels={"gender": {1: "Male", 2: "Female"},
                                                "trust_parl": {0: "No trust", 10: "Complete trust", 99: "No answer"}},
                         missing_ranges={"trust_parl": [99]})
    d = scaffold(ROOT, path, "tiny", "1", year=2020, aliases=False, project=declarations())
    rules = {t.variable.name: t for t in d.targets}
    assert rules["sex"].rule == {"source": "gender", "map": {1: "male", 2: "female"}, "quality": "exact"}
    assert rules["sex"].todo == "fix: observed code 3 has no target code or missing reason"
    assert rules["trust_parliament"].todo is None
    assert rules["trust_parliament"].rule == {"source": "trust_parl", "range": [0, 10], "quality": "exact",
                                              "missing": {99: "no_answer"}}


def test_a_file_without_missing_codes_gets_an_empty_codes_mapping(tmp_path: Path) -> None:
    """The draft's untagged lines must load: `codes:` with nothing under it is null, not a mapping."""
    import pandas as pd
    import pyreadstat

    path = tmp_path / "plain.sav"
    pyreadstat.write_sav(pd.DataFrame({"gender": [1.0, 2.0, 1.0]}), str(path), column_labels=["Gender"],
                         variable_value_labels={"gender": {1: "Male", 2: "Female"}})
    d = scaffold(ROOT, path, "plain", "1", year=2020, aliases=False, project=declarations())
    assert not d.missing.codes
    text = render(d)
    assert "\n  codes: {}\n" in text
    loaded = load_yaml_text(text, "plain.yaml")
    assert loaded.issues == [] and loaded.data["missing"]["codes"] == {}


@pytest.mark.parametrize("value", [{"A\n": None}, {"x": "A\n"}, {"files": ["x.sav\n"]}])
def test_flow_yaml_quotes_strings_with_a_trailing_line_break(value: dict[Any, Any]) -> None:
    """A plain-looking word with a trailing newline must be quoted, or YAML breaks the line (found by Hypothesis)."""
    loaded = load_yaml_text(f"rule: {flow(value)}\n", "t.yaml")
    assert (loaded.issues, loaded.data) == ([], {"rule": value})


def _sav(path: Path, columns: dict[str, tuple[str, list[float], dict[float, str]]]) -> Path:
    """A small .sav: name → (label, values, value labels)."""
    import pandas as pd
    import pyreadstat

    df = pd.DataFrame({n: v for n, (_, v, _) in columns.items()})
    pyreadstat.write_sav(df, str(path), column_labels=[lab for lab, _, _ in columns.values()],
                         variable_value_labels={n: labs for n, (_, _, labs) in columns.items() if labs})
    return path


def test_a_code_table_whose_labels_disagree_is_todo_with_both_labels(tmp_path: Path) -> None:
    """EU-MIDIS numbering except code 8, 'United Kingdom' in the file but Estonia in every numeric table."""
    labels = {1.0: "Austria", 2.0: "Belgium", 3.0: "Bulgaria", 8.0: "United Kingdom"}
    path = _sav(tmp_path / "gb.sav", {"country_interview": ("Country of interview", [1.0, 2.0, 3.0, 8.0], labels)})
    d = scaffold(ROOT, path, "newsurvey", "1", year=2020, aliases=False, project=declarations())
    country = next(t for t in d.targets if t.variable.name == "country")
    assert country.rule["table"] == "eumidis_country_codes"
    assert country.todo == ("labels disagree: code 8 is 'United Kingdom' in country_interview but "
                            "eumidis_country_codes gives EE 'Estonia'")


def test_a_map_against_its_labels_is_todo(tmp_path: Path) -> None:
    """The ESS crosswalk maps gndr 1 to male; a file labelling 1 'Female' keeps no settled sex rule."""
    path = _sav(tmp_path / "ESS9XX.sav", {"gndr": ("Gender", [1.0, 2.0, 1.0], {1.0: "Female", 2.0: "Male"})})
    d = scaffold(ROOT, path, "ess", "new", year=2018, project=declarations())
    sex = next(t for t in d.targets if t.variable.name == "sex")
    assert sex.todo is not None and "code 1 is 'Female' in gndr but the rule gives 'male' (the label names 'female')" in sex.todo


def test_a_sibling_question_is_never_settled(tmp_path: Path) -> None:
    """Trust in the police is not trust in parliament; the mother's birthplace is not the respondent's; one
    variable feeds one target."""
    path = _sav(tmp_path / "evs.sav", {
        "q1": ("Trust in the police", [0.0, 10.0, 5.0], {0.0: "No trust at all", 10.0: "Complete trust"}),
        "v232": ("Mother born in country", [1.0, 2.0, 1.0], {1.0: "Yes", 2.0: "No"}),
        "cntry": ("Country", [1.0, 2.0, 2.0], {1.0: "Austria", 2.0: "Belgium"}),
    })
    d = scaffold(ROOT, path, "newsurvey", "1", year=2020, aliases=False, project=declarations())
    by = {t.variable.name: t for t in d.targets}
    assert by["trust_parliament"].rule["source"] == "q1" and "labels of q1" in (by["trust_parliament"].todo or "")
    assert by["born_in_country"].rule["source"] == "v232"
    assert "v232 fits mother_born_in_country better" in (by["born_in_country"].todo or "")
    assert by["mother_born_in_country"].todo is None and by["mother_born_in_country"].rule["source"] == "v232"
    readers_of_cntry = [t for t in d.targets if t.rule.get("source") == "cntry"]
    assert len(readers_of_cntry) >= 2 and all(t.todo for t in readers_of_cntry)


def test_a_covered_survey_starts_from_its_crosswalk(ess8: Path) -> None:
    """ESS8FR as a new ESS wave: every settled rule is the shipped round-8 rule (notes included)."""
    d = scaffold(ROOT, ess8, "ess", "new", year=2016, project=declarations())
    settled = {t.variable.name: t.rule for t in d.targets if t.todo is None}
    assert d.missing == shipped().missing
    assert all(t.known for t in d.targets if t.todo is None)
    assert {n: Rule.model_validate(r) for n, r in settled.items()} == {n: Rule.model_validate(shipped_rule(n))
                                                                       for n in settled}
    # psu and stratum too: the crosswalk measures them from round 9, but the file fits round 8 best and lacks them
    assert {t.variable.name: t.todo for t in d.targets if t.todo} == {}
    assert settled["psu"] == shipped_rule("psu") and settled["psu"]["not_asked"]


def test_not_asked_is_not_assumed_from_the_variable_in_question(project: Path) -> None:
    """ESS7EE (round 7) lacks atchctr; in a crosswalk that reads it from round 7 on, that absence alone would make
    the file look like round 6 (not asked), so belonging_country stays TODO. (The shipped crosswalk declares it
    not asked in round 7, as the real file shows: then the draft takes that without a TODO.)"""
    path = ROOT.parent / "shared" / "data" / "ess_real" / "ess7_ee" / "ESS7EE.sav"
    if not path.is_file():
        pytest.skip(f"no {path}")
    crosswalk = project / "mappings" / "ess.yaml"
    text = crosswalk.read_text()
    assert '  - waves: ["1", "2", "3", "4", "5", "6", "7"]\n    notes: "Rounds 1-7: no attachment' in text
    crosswalk.write_text(text.replace('  - waves: ["1", "2", "3", "4", "5", "6", "7"]\n    notes: "Rounds 1-7: no '
                                      'attachment', '  - waves: ["1", "2", "3", "4", "5", "6"]\n    notes: "Rounds 1-6: '
                                      'no attachment'))
    d = scaffold(project, path, "ess", "new", year=2014, project=load_project(project))
    belonging = next(t for t in d.targets if t.variable.name == "belonging_country")
    assert belonging.rule["not_asked"] and belonging.todo == (
        "keep not_asked only if this wave did not ask it; mappings/ess.yaml measures it in other waves "
        "(waves 7-11: atchctr in [0, 10] (ESS7EE.sav lacks atchctr))")
    shipped_draft = scaffold(ROOT, path, "ess", "new", year=2014, project=declarations())
    belonging = next(t for t in shipped_draft.targets if t.variable.name == "belonging_country")
    assert belonging.rule["not_asked"] and belonging.todo is None


def test_the_wave_named_limits_the_rules_to_that_wave(ess8: Path) -> None:
    d = scaffold(ROOT, ess8, "ess", "9", year=2018, project=declarations())
    by = {t.variable.name: t for t in d.targets}
    assert by["country_of_birth"].todo is not None and "no rule of mappings/ess.yaml fits" in by["country_of_birth"].todo
    assert "ESS8FR.sav lacks cntbrthd" in by["country_of_birth"].todo
    assert by["sex"].todo is None and by["sex"].rule == shipped_rule("sex")


REAL = sorted(p for p in (ROOT.parent / "shared" / "data" / "ess_real").glob("*/*") if p.suffix in (".sav", ".dta"))


@cache
def _round_of(path: Path) -> tuple[str, str | None]:
    """The ESS round a real file holds (its essround variable) and the encoding to open it with; read once per
    worker for both modes of the precision test (one module: one worker)."""
    from harmonise.errors import InputError
    from harmonise.readers.files import open_source

    try:
        src, encoding = open_source(path), None
    except InputError:  # ESS9GB.dta records no encoding; its text is latin-1, as the message advises
        src, encoding = open_source(path, encoding="latin1"), "latin1"
    column = src.meta.get("essround").name  # type: ignore[union-attr]
    rounds = {int(r) for chunk in src.chunks([column]) for r in chunk[column].dropna().unique()}
    assert len(rounds) == 1, (path, rounds)
    return str(rounds.pop()), encoding


def _draft_as_new_wave(path: Path, known: bool) -> tuple[Draft, str]:
    """The file scaffolded as a new ESS wave, and the round it really is (from its essround variable)."""
    wave, encoding = _round_of(path)
    return scaffold(ROOT, path, "ess", "new", year=shipped().wave(wave).year, encoding=encoding, known=known,
                    project=declarations()), wave


@pytest.mark.slow
@pytest.mark.skipif(not REAL, reason="no real ESS files under ../shared/data/ess_real")
@pytest.mark.parametrize("known", [True, False], ids=["from-crosswalk", "similarity-only"])
def test_settled_rules_agree_with_the_shipped_crosswalk_on_real_files(ess8: Path, known: bool) -> None:
    """Precision of settled rules on every real ESS file, each scaffolded as a new wave (issue 21 item 2); the
    declarations are loaded once for all files (scaffold's ``project``), each mode is a test of its own."""
    from harmonise.authoring.draft_quality import precision

    proj = declarations()
    totals = dict.fromkeys(("targets", "settled", "correct", "wrong", "absent", "absent_settled"), 0)
    wrong: list[str] = []
    for path in [*REAL, ess8]:
        draft, wave = _draft_as_new_wave(path, known)
        p = precision(draft, proj, "ess", wave)
        wrong += [f"{path.name}: {n}" for n in p.wrong]
        for k, v in (("targets", p.targets), ("settled", p.settled), ("correct", len(p.correct)),
                     ("wrong", len(p.wrong)), ("absent", len(p.absent)), ("absent_settled", len(p.absent_settled))):
            totals[k] += v
    compared = totals["correct"] + totals["wrong"]
    comparable = totals["targets"] - totals["absent"]
    mode = "from mappings/ess.yaml" if known else "similarity only"
    print(f"\nscaffold {mode}, {len(REAL) + 1} files: precision {totals['correct']}/{compared} = "
          f"{totals['correct'] / compared:.1%}; settled {totals['settled']}/{totals['targets']} targets = "
          f"{totals['settled'] / totals['targets']:.1%} ({totals['correct'] + totals['wrong']}/{comparable} = "
          f"{compared / comparable:.1%} of the targets whose shipped sources the file holds); "
          f"{totals['absent']} targets' shipped sources absent, {totals['absent_settled']} of them settled")
    assert wrong == [] and totals["correct"] / compared >= 0.98
    assert compared / comparable >= (0.9 if known else 0.25)


def test_no_crosswalk_flag_drafts_from_similarity_alone(ess8: Path, draft: Draft) -> None:
    code, out, err = run("scaffold", str(ess8), "--survey", "ess", "--wave", "8", "--no-crosswalk")
    assert code == 0 and err == f"standard output: {len(draft.targets)} target(s), {draft.todos} TODO line(s) to resolve\n"
    assert "rule of mappings/ess.yaml" not in out
    code, out, err = run("scaffold", str(ess8), "--survey", "ess", "--wave", "8")
    assert code == 0 and "#   rule of mappings/ess.yaml, wave 8: gndr mapped\n  sex: {source: gndr" in out


def test_scaffold_out_never_writes_through_a_link(ess8: Path, tmp_path: Path) -> None:
    """`scaffold --out draft.yaml --force` with draft.yaml a link to a crosswalk overwrote the crosswalk; a
    dangling link was written through without --force."""
    target = tmp_path / "crosswalk.yaml"
    target.write_text("keep me\n", encoding="utf-8")
    link = tmp_path / "draft.yaml"
    link.symlink_to(target)
    args = ("scaffold", str(ess8), "--survey", "ess", "--wave", "8", "--out", str(link))
    for extra in ((), ("--force",)):
        code, _, err = run(*args, *extra)
        if not extra:
            assert (code, err) == (2, (f"error: {link} is a link (to {target}); pass --force to replace the link "
                                      "itself\n"))
    assert code == 0 and not link.is_symlink() and link.read_text(encoding="utf-8").startswith("# yaml-language")
    assert target.read_text(encoding="utf-8") == "keep me\n"
    dangling = tmp_path / "gone.yaml"
    dangling.symlink_to(tmp_path / "nowhere" / "x.yaml")
    code, _, err = run("scaffold", str(ess8), "--survey", "ess", "--wave", "8", "--out", str(dangling))
    assert code == 2 and err.startswith(f"error: {dangling} is a link")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crosswalk.yaml", "draft.yaml", "gone.yaml"]


def test_scaffold_out_that_cannot_be_written_names_the_file_asked_for(ess8: Path, tmp_path: Path) -> None:
    out = tmp_path / "no-folder" / "draft.yaml"
    code, _, err = run("scaffold", str(ess8), "--survey", "ess", "--wave", "8", "--out", str(out))
    assert (code, err) == (2, f"error: {out}: No such file or directory; check the path, free space and permissions\n")
    assert list(tmp_path.iterdir()) == []
