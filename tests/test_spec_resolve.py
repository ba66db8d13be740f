"""Resolution details that real files need: letters labelled by the file, alternatives chosen by presence."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyreadstat
from conftest import ROOT, run

from harmonise.spec.crosswalk import MissingDefaults
from harmonise.spec.resolve import classify_missing, reason_of_label
from harmonise.spec.source import VarMeta

ESS_LETTERS = {"a": "not_applicable", "b": "refused", "c": "dont_know", "d": "no_answer"}


def test_a_file_that_labels_its_stata_letters_says_what_they_mean() -> None:
    """A data-portal subset shifts the letters (.a Refusal, .b Don't know, .c No answer): the survey's
    letter defaults would call every refusal 'not applicable'."""
    defaults = MissingDefaults(extended=ESS_LETTERS)
    shifted = VarMeta("happy", extended={"a": "Refusal", "b": "Don't know", "c": "No answer"})
    got = classify_missing(defaults, {}, set(), None, shifted)
    assert got.extended == {"a": "refused", "b": "dont_know", "c": "no_answer", "d": "no_answer"}
    unlabelled = classify_missing(defaults, {}, set(), None, VarMeta("happy"))
    assert unlabelled.extended == ESS_LETTERS
    explicit = classify_missing(defaults, {".a": "not_asked"}, set(), None, shifted)
    assert explicit.extended["a"] == "not_asked"  # the rule's own word wins


def test_only_unambiguous_labels_name_a_reason() -> None:
    assert [reason_of_label(x) for x in ["Refusal", "DON'T KNOW", "No answer", "Not applicable", "Other",
                                         "No answer/refusal", ""]] == [
        "refused", "dont_know", "no_answer", "not_applicable", None, None, None]


def test_periods_resolve_as_the_same_overrides_written_in_every_wave() -> None:
    """Folding repeated overrides into `periods` changes no compiled SQL: each crosswalk, unfolded (every
    period's overrides copied into its waves), compiles to the same SQL for every wave."""
    from harmonise.compile.sql import plan_and_compile
    from harmonise.spec.project import load_project
    from tests.conftest import ROOT

    project = load_project(ROOT)
    folded = 0
    for survey, entry in project.surveys.items():
        cw = entry.crosswalk
        waves = []
        for w in cw.waves:
            shared = {t: ov for p in cw.periods if w.wave in p.waves for t, ov in p.overrides.items()}
            assert not set(shared) & set(w.overrides), "a wave overriding a period's target cannot be unfolded so"
            folded += len(shared)
            waves.append(w.model_copy(update={"overrides": {**shared, **w.overrides}}))
        unfolded = cw.model_copy(update={"periods": [], "waves": waves})
        for w, u in zip(cw.waves, waves, strict=True):
            meta = project.declared_meta(survey, w.wave)
            assert meta is not None
            assert plan_and_compile(cw, w, project, meta)[1].sql == plan_and_compile(unfolded, u, project, meta)[1].sql
    assert folded == sum(len(p.waves) * len(p.overrides) for e in project.surveys.values() for p in e.crosswalk.periods)
    assert folded > 0


ESS_CODES = {"not_applicable": [6, 66], "refused": [7, 77], "dont_know": [8, 88], "no_answer": [9, 99]}


def test_a_survey_code_takes_the_reason_its_label_names() -> None:
    """A file numbered anew in its labels' order (R's as_factor written back: vote 4 'Refusal', 5 'Don't know',
    6 'No answer') holds 'No answer' at the convention's 6: the convention made it not applicable, as it made the
    real files' 9 'Not available' (inwyys) no answer. The file's label names the reason, as a Stata letter's does
    (decision 102); a label naming none, or no label, keeps the convention's."""
    defaults = MissingDefaults(codes=ESS_CODES)
    renumbered = VarMeta("vote", labels={1: "Yes", 2: "No", 3: "Not eligible to vote", 4: "Refusal",
                                         5: "Don't know", 6: "No answer"})
    got = classify_missing(defaults, {}, {1, 2, 3}, None, renumbered)
    assert got.reasons == {4: "refused", 5: "dont_know", 6: "no_answer"}
    declared = VarMeta("inwyys", labels={9999: "Not available", 99: "Other"}, missing_values=[99, 66, 9999])
    assert classify_missing(MissingDefaults(codes={**ESS_CODES, "no_answer": [9, 99, 9999]}), {}, set(), None,
                            declared).reasons == {66: "not_applicable", 99: "no_answer", 9999: "not_available"}
    assert classify_missing(defaults, {6: "refused"}, {1, 2, 3}, None, renumbered).reasons[6] == "refused"  # the rule's


def test_a_file_numbered_anew_in_its_labels_order_harmonises_as_its_release(tmp_path: Path) -> None:
    """R's `as_factor` written back with `write_sav` numbers each labelled variable 1..k in its codes' order and
    drops the missing declarations: ESS9 FI's vote 7/8/9 became 4 'Refusal', 5 "Don't know", 6 'No answer', health's
    6 'Refusal', 7 "Don't know", 8 'No answer', hincfel's 5, 6, 7. The convention's 6 and 7 made no-answers not
    applicable and don't-knows refusals (and health a label contradiction); by their labels (decision 102) every
    harmonised value equals the release's."""
    real = ROOT.parent / "shared" / "data" / "ess_real" / "ess9_nordic" / "ESS9FI.sav"
    df, meta = pyreadstat.read_sav(str(real), user_missing=True)
    labels = dict(meta.variable_value_labels)
    renumbered = ("vote", "gndr", "brncntr", "ctzcntr", "health", "hincfel")
    for name in renumbered:
        new = {code: float(i) for i, code in enumerate(sorted(labels[name]), start=1)}
        df[name] = df[name].map(lambda v, new=new: new.get(v, v))
        labels[name] = {new[code]: label for code, label in labels[name].items()}
    data = tmp_path / "data"
    data.mkdir()
    pyreadstat.write_sav(df, str(data / "ESS9FI.sav"), column_labels=meta.column_labels, variable_value_labels=labels,
                         missing_ranges={k: v for k, v in meta.missing_ranges.items() if k not in renumbered})
    assert labels["vote"][6.0] == "No answer" and labels["health"][6.0] == "Refusal"
    rows = []
    for source, db in ((real, tmp_path / "release.duckdb"), (data, tmp_path / "renumbered.duckdb")):
        code, _, err = run("build", "--data", str(source), "--db", str(db))
        assert code == 0, err
        assert "label-contradiction" not in err
        con = duckdb.connect(str(db), read_only=True)
        columns = [r[0] for r in con.execute("DESCRIBE respondents").fetchall() if r[0] != "source_file"]
        listed = ", ".join(f'"{c}"' for c in columns)
        rows.append(con.execute(f"SELECT {listed} FROM respondents ORDER BY source_row").fetchall())
        con.close()
    assert rows[0] == rows[1] and len(rows[0]) == 1755
    assert {r[columns.index("voted_national_missing")] for r in rows[1]} >= {"no_answer", "dont_know"}
