"""harmonise.borrowed: a file saved without its metadata is read with the declared codebook's value labels and
missing values for the numeric variables it leaves bare (decision 101), and said once."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyreadstat
import pytest
from conftest import ROOT, run

from harmonise.borrowed import bare, borrow_labels, borrowed_issue
from harmonise.compile.sql import plan_and_compile
from harmonise.readers.files import SourceFile, open_source
from harmonise.spec.project import load_project
from harmonise.spec.source import SourceMeta, VarMeta

# what every harmonised row holds but the file it came from (its name, path and row)
PROVENANCE = {"source_file", "source_row"}


def _needed(ess8: Path) -> list[str]:
    """The columns the ESS round-8 crosswalk reads of the real file, with the round variable."""
    project = load_project(ROOT)
    cw = project.crosswalks["ess"]
    wave = next(w for w in cw.waves if w.wave == "8")
    src = open_source(ess8, isolate=False)
    _, compiled = plan_and_compile(cw, wave, project, src.meta)
    return sorted({*compiled.sources, "essround"} & set(src.meta.variables))


@pytest.fixture(scope="module", params=["sav", "dta"])
def stripped(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
             ess8: Path) -> tuple[Path, list[str]]:
    """The real ESS8 FR file's needed columns saved, as SPSS or Stata, with no value label or missing declaration
    (as a script that keeps the numbers only writes it), and the numeric columns among them the declared codebook
    labels. (A Stata file's bare letters would be read by the survey's convention: it has none, its 7, 77 … are
    numbers.)"""
    columns = _needed(ess8)
    frame, meta = pyreadstat.read_sav(str(ess8), usecols=columns, user_missing=True)
    folder = tmp_path_factory.mktemp("stripped")
    write = pyreadstat.write_sav if request.param == "sav" else pyreadstat.write_dta
    write(frame, str(folder / f"ESS8FR.{request.param}"))
    declared = load_project(ROOT).declared_meta("ess", "8")
    assert declared is not None
    labelled = sorted(c for c in columns if meta.readstat_variable_types[c] == "double" and (d := declared.get(c))
                      is not None and not bare(d))
    return folder, labelled


def test_a_file_without_labels_harmonises_as_the_labelled_release_with_one_warning(
        stripped: tuple[Path, list[str]], fr_db: Path, tmp_path: Path) -> None:
    folder, labelled = stripped
    assert len(labelled) >= 30 and {"trstprl", "hincfel", "wkhtot", "livecnta"} <= set(labelled)
    code, out, err = run("validate", "--data", str(folder))
    assert code == 0, err
    said = [line for line in (out + err).splitlines() if line.startswith("warning:")]
    assert len(said) == 1 and said[0].startswith("warning: ess wave 8: ")
    assert "labels-borrowed 1" in out + err
    assert f"{len(labelled)} numeric variable(s) the rules read carry no value labels" in said[0]
    assert "surveys/ess/codebook_8.yaml declares for them" in said[0]
    code, _, err = run("build", "--data", str(folder), "--db", str(tmp_path / "s.duckdb"))
    assert code == 0, err
    con = duckdb.connect(str(fr_db), read_only=True)
    con.execute(f"ATTACH '{tmp_path / 's.duckdb'}' AS s (READ_ONLY)")
    columns = [r[0] for r in con.execute("DESCRIBE respondents").fetchall() if r[0] not in PROVENANCE]
    listed = ", ".join(f'"{c}"' for c in columns)
    assert len(columns) > 100
    assert con.execute(f"SELECT {listed} FROM respondents ORDER BY respondent_id").fetchall() == \
        con.execute(f"SELECT {listed} FROM s.respondents ORDER BY respondent_id").fetchall()


def test_the_sql_of_a_file_without_labels_is_the_labelled_releases(stripped: tuple[Path, list[str]],
                                                                     ess8: Path) -> None:
    folder, _ = stripped
    (path,) = folder.iterdir()
    code, bare_sql, err = run("sql", "ess", "8", "--data", str(path))
    assert code == 0, err
    code, real_sql, err = run("sql", "ess", "8", "--data", str(ess8))
    assert code == 0, err
    if path.suffix == ".dta":  # a Stata file's statement reads its letters columns beside each numeric one
        assert '"trstprl#x"' in bare_sql and '"trstprl#x"' not in real_sql
    else:
        assert bare_sql == real_sql


def test_a_variable_the_file_labels_at_all_keeps_its_own_metadata(tmp_path: Path, ess8: Path) -> None:
    """One label is metadata: trstprl labelled 0 'No trust at all' only keeps its 77 and 88 unmapped (decision 2),
    while the bare variables beside it are read with the codebook's."""
    columns = _needed(ess8)
    frame, _ = pyreadstat.read_sav(str(ess8), usecols=columns, user_missing=True)
    pyreadstat.write_sav(frame, str(tmp_path / "ESS8FR.sav"), variable_value_labels={"trstprl": {0: "No trust at all"}})
    code, out, err = run("validate", "--data", str(tmp_path))
    assert code == 1
    errors = [line for line in (out + err).splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "targets.trust_parliament: source variable trstprl: 2 codes have no mapping" in errors[0]
    assert "77 (no value label) 2, 88 (no value label) 25" in errors[0]


def _src(**variables: VarMeta) -> SourceFile:
    return SourceFile(Path("x.sav"), "sav", SourceMeta("x.sav", dict(variables)))


def test_only_bare_numeric_variables_the_codebook_labels_are_given_its_labels() -> None:
    declared = SourceMeta("codebook_8.yaml", {
        "vote": VarMeta("vote", labels={1: "Yes", 2: "No", 7: "Refusal"}, missing_values=[7]),
        "gndr": VarMeta("gndr", labels={1: "Male", 2: "Female"}),
        "cntry": VarMeta("cntry", type="string", labels={"FR": "France"}),
        "wkhtot": VarMeta("wkhtot", missing_ranges=[(666.0, 999.0)]),
        "pspwght": VarMeta("pspwght"),
        "stflife": VarMeta("stflife", type="string", labels={"77": "Refusal"}),
    })
    src = _src(vote=VarMeta("VOTE"), gndr=VarMeta("gndr", labels={1: "M"}), cntry=VarMeta("cntry", type="string"),
               wkhtot=VarMeta("wkhtot"), pspwght=VarMeta("pspwght"), stflife=VarMeta("stflife"),
               agea=VarMeta("agea"))
    src.supply("ctzcntr", 1, "supplied")
    out, names = borrow_labels(src, declared)
    assert names == ["vote", "wkhtot"]  # gndr labelled, cntry text, pspwght bare in the codebook too, stflife retyped
    assert out.meta.variables["vote"] == VarMeta("VOTE", labels={1: "Yes", 2: "No", 7: "Refusal"}, missing_values=[7])
    assert out.meta.variables["wkhtot"].missing_ranges == [(666.0, 999.0)]
    assert out.meta.variables["gndr"] is src.meta.variables["gndr"]
    assert src.meta.variables["vote"] == VarMeta("VOTE")  # the opened file (other waves may read it) unchanged
    assert out.virtual == src.virtual and out.virtual is not src.virtual
    assert borrow_labels(src, None) == (src, [])
    assert borrow_labels(_src(gndr=VarMeta("gndr", labels={1: "M"})), declared)[1] == []


def test_the_warning_names_only_what_the_rules_read() -> None:
    assert borrowed_issue("x.sav", ["pspwght"], ["vote"], "surveys/ess/codebook_8.yaml", "ess", "8") is None
    issue = borrowed_issue("x.sav", [f"v{i}" for i in range(10)] + ["unread"], [f"V{i}" for i in range(10)],
                           "surveys/ess/codebook_8.yaml", "ess", "8")
    assert issue is not None and issue.code == "labels-borrowed" and issue.severity == "warning"
    assert issue.message.startswith("x.sav: 10 numeric variable(s) the rules read carry no value labels or "
                                    "missing-value declarations (v0, v1, v2, v3, v4, v5, v6, v7 and 2 more): ")


def test_a_file_written_with_its_labels_applied_is_told_what_it_holds(tmp_path: Path, ess8: Path) -> None:
    """A script that reads a file with its value labels applied and writes it back stores trstprl's texts ('No
    trust at all', '1', …) where the codes were: the range rule's error said only that numbers stored as text need
    making numeric, which no `destring` does for these. It now names this cause too."""
    columns = _needed(ess8)
    frame, _ = pyreadstat.read_sav(str(ess8), usecols=columns, user_missing=True)
    texts, _ = pyreadstat.read_sav(str(ess8), usecols=["trstprl"], apply_value_formats=True)
    pyreadstat.write_sav(frame.assign(trstprl=texts["trstprl"].astype(str)), str(tmp_path / "ESS8FR.sav"))
    code, out, err = run("validate", "--data", str(tmp_path))
    assert code == 1
    errors = [line for line in (out + err).splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].endswith(
        "targets.trust_parliament.source: wave 8: a range rule needs a numeric source, but trstprl is a string "
        "variable — a file storing numbers as text needs them made numeric (Stata `destring`, SPSS `ALTER TYPE`; "
        "decimal commas made points); a file written with its value labels applied holds their texts ('No trust at "
        "all', '1', …) instead of the codes: use the release with codes; for text codes, use a map or a table")
