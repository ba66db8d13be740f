"""Survey-level missing codes and Stata letters are read by their labels: an answer's label on a default missing
code (6 'Big city centre') is an answer, and a letter's label in a national language says what the letter is
(small copies of the real ESS8 France file, written with pyreadstat)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyreadstat
import pytest

from harmonise.spec.crosswalk import MissingDefaults
from harmonise.spec.resolve import NATIONAL_MISSING_LABELS, classify_missing, label_words, reason_of_label
from harmonise.spec.source import VarMeta
from tests.conftest import run

CROSSWALK = Path(__file__).resolve().parent.parent / "mappings" / "ess.yaml"
COLUMNS = ["idno", "cntry", "essround", "gndr", "domicil", "cntbrthc", "trstprl", "hinctnta", "pspwght", "pweight"]
ESS_CODES = {"not_applicable": [6, 66], "refused": [7, 77], "dont_know": [8, 88], "no_answer": [9, 99]}


@pytest.fixture(scope="module")
def real(ess8: Path) -> tuple[pd.DataFrame, Any]:
    return pyreadstat.read_sav(str(ess8), usecols=COLUMNS, user_missing=True)


def _sav(real: tuple[pd.DataFrame, Any], folder: Path, df: pd.DataFrame | None = None,
         labels: dict[str, dict[Any, str]] | None = None, missing: dict[str, list[Any]] | None = None) -> Path:
    frame, meta = real
    folder.mkdir()
    pyreadstat.write_sav(frame if df is None else df, str(folder / "ESS8FR.sav"),
                         column_labels=meta.column_names_to_labels,
                         variable_value_labels={**meta.variable_value_labels, **(labels or {})},
                         missing_ranges={**meta.missing_ranges, **(missing or {})})
    return folder


def _line(target: str) -> int:
    """The line of the target's rule in the crosswalk's ``targets``."""
    return CROSSWALK.read_text(encoding="utf-8").splitlines().index(f"  {target}:") + 1


def _errors(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("error:")]


def _counts(db: Path, sql: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


# --- labels that name a reason ---------------------------------------------------------------------------------

def test_a_label_names_a_reason_in_english_and_in_the_ess_languages() -> None:
    assert [reason_of_label(x) for x in [
        "Refusal", "DON'T KNOW", "No answer*", "Not applicable", "Don't know (spontaneous)", "item not included",
        "Odmowa", "Nie wiem", "Brak odpowiedzi", "Nie dotyczy", "Weiß nicht", "Keine Angabe", "Ne sait pas",
        "Sans objet", "Não sabe", "Weet niet", "Vet ej", "Ei osaa sanoa", "Nevím", "Відмова", "Не знаю", "Άρνηση",
    ]] == [
        "refused", "dont_know", "no_answer", "not_applicable", "dont_know", "not_asked",
        "refused", "dont_know", "no_answer", "not_applicable", "dont_know", "no_answer", "dont_know",
        "not_applicable", "dont_know", "dont_know", "dont_know", "dont_know", "dont_know", "refused", "dont_know",
        "refused"]


def test_answers_and_ambiguous_wordings_name_no_reason() -> None:
    """Whole labels only, never a wording that also answers a question: 'Trifft nicht zu' is a German agreement
    scale's point, 'Trudno powiedzieć' (hard to say) often a substantive middle answer."""
    assert [reason_of_label(x) for x in [
        "Other", "Other (specify)", "No answer/refusal", "", "Big city centre", "RU", "Estonia", "Nein",
        "Trifft nicht zu", "Nicht zutreffend", "Trudno powiedzieć", "Важко сказати", "Refusal of treatment",
        "Never", "None of these"]] == [None] * 15


def test_every_national_wording_is_written_as_labels_are_normalised() -> None:
    """An entry that :func:`label_words` would not produce from any label could never match."""
    entries = [(reason, w) for reason, words in NATIONAL_MISSING_LABELS.items() for w in words]
    assert [(reason, w) for reason, w in entries if label_words(w) != w] == []
    assert len({w for _, w in entries}) == len(entries)  # no wording names two reasons


def test_a_default_code_labelled_as_an_answer_is_no_missing_code() -> None:
    defaults = MissingDefaults(codes=ESS_CODES)  # type: ignore[arg-type]
    domicil = VarMeta("domicil", labels={1: "A big city", 6: "Big city centre", 7: "Refusal", 8: "Weiß nicht",
                                         9: "Don't know"})
    # 9 labelled "Don't know": the reason its label names (decision 102), not the convention's no answer
    assert classify_missing(defaults, {}, {1}, None, domicil).reasons == {7: "refused", 8: "dont_know",
                                                                           9: "dont_know"}
    declared = VarMeta("domicil", labels={6: "Big city centre"}, missing_values=[6])
    assert classify_missing(defaults, {}, set(), None, declared).reasons == {6: "not_applicable"}  # the file says so


# --- bug 1: a labelled answer code equal to a survey-level missing code --------------------------------------

def test_a_default_missing_code_labelled_as_an_answer_is_an_unmapped_code(real: tuple[pd.DataFrame, Any],
                                                                          tmp_path: Path) -> None:
    """domicil 6 labelled 'Big city centre' (20 rows) was stored as urbanisation not_applicable without a word: a
    default missing code applied to any code the file labels. Now a label must name a missing reason."""
    df = real[0].copy()
    df.loc[df.index[:20], "domicil"] = 6.0
    labels = {"domicil": {**real[1].variable_value_labels["domicil"], 6.0: "Big city centre"}}
    folder = _sav(real, tmp_path / "answer", df, labels)
    code, _out, err = run("validate", "--data", str(folder))
    assert code == 1
    assert _errors(err) == [
        (f"error: mappings/ess.yaml:{_line('urbanisation')} targets.urbanisation: source variable "
        "domicil code 6 ('Big city centre') has no mapping for target urbanisation: 20 row(s) — add the codes to "
        "the rule's map or missing")]
    # labelled as missing (in English or Polish), or declared missing whatever its label: not applicable, as before
    for name, label, missing in (("english", "Not applicable", None), ("polish", "Nie dotyczy", None),
                                 ("declared", "Big city centre", {"domicil": [{"lo": 6.0, "hi": 9.0}]})):
        folder = _sav(real, tmp_path / name, df, {"domicil": {**labels["domicil"], 6.0: label}}, missing)
        db = tmp_path / f"{name}.duckdb"
        code, _, err = run("build", "--data", str(folder), "--db", str(db))
        assert code == 0, err
        assert _counts(db, "SELECT urbanisation_missing, count(*) FROM respondents WHERE urbanisation IS NULL "
                           "GROUP BY 1") == [("not_applicable", 20)], name


def test_a_numeric_country_of_birth_whose_codes_6_7_8_name_countries_is_unmapped(real: tuple[pd.DataFrame, Any],
                                                                                tmp_path: Path) -> None:
    """A country of birth recoded to numbers, 6 'Algeria', 7 'Morocco', 8 'Portugal': its 79 foreign-born were
    stored as not applicable, refused and don't know; now every such code is an unmapped code."""
    df = real[0].copy()
    codes = {"66": 6666.0, "DZ": 6.0, "MA": 7.0, "PT": 8.0}
    df = df[df.cntbrthc.isin(list(codes))].reset_index(drop=True)
    df["cntbrthc"] = df.cntbrthc.map(codes)
    folder = _sav(real, tmp_path / "numeric", df,
                  {"cntbrthc": {6666.0: "Not applicable", 6.0: "Algeria", 7.0: "Morocco", 8.0: "Portugal"}},
                  {"cntbrthc": [6666.0]})
    code, _out, err = run("validate", "--data", str(folder))
    assert code == 1
    assert [line for line in _errors(err) if "cntbrthc" in line] == [
        (f"error: mappings/ess.yaml:{_line('country_of_birth')} targets.country_of_birth: source "
        "variable cntbrthc: 3 codes have no mapping for target country_of_birth: 6 ('Algeria') 37, 7 ('Morocco') "
        "24, 8 ('Portugal') 18 (79 row(s) in all) — add the codes to the rule's map or missing")]


def test_a_stata_encoded_country_of_birth_lists_every_code_as_unmapped(real: tuple[pd.DataFrame, Any],
                                                                       tmp_path: Path) -> None:
    """Stata's `encode` numbers the country codes 1..n and labels them with the strings: codes 6-8 were taken as
    the ESS missing codes, so the unmapped-code error listed only 1-5 and their rows were stored as missing."""
    df = real[0][["idno", "cntry", "essround", "cntbrthc", "pspwght", "pweight"]].copy()
    df = df[df.cntbrthc.isin(["66", "BE", "CH", "DE", "DZ", "ES", "IT", "MA"])].reset_index(drop=True)
    enc = {c: float(i) for i, c in enumerate(sorted(df.cntbrthc.unique()), 1)}
    df["cntbrthc"] = df.cntbrthc.map(enc)
    (tmp_path / "dta").mkdir()
    pyreadstat.write_dta(df, str(tmp_path / "dta" / "ESS8FR.dta"),
                         variable_value_labels={"cntbrthc": {int(i): c for c, i in enc.items()}})
    code, _out, err = run("validate", "--data", str(tmp_path / "dta"))
    assert code == 1
    assert [line for line in _errors(err) if "cntbrthc" in line] == [
        (f"error: mappings/ess.yaml:{_line('country_of_birth')} targets.country_of_birth: source "
        "variable cntbrthc: 8 codes have no mapping for target country_of_birth: 1 ('66') 1,858, 2 ('BE') 6, "
        "3 ('CH') 8, 4 ('DE') 5, 5 ('DZ') 37 and 3 more (--format json lists all) (1,952 row(s) in all) — add the codes to the rule's map "
        "or missing")]


# --- bug 2: Stata letters labelled in another language --------------------------------------------------------

def _letters(real: tuple[pd.DataFrame, Any], folder: Path, words: dict[str, str]) -> Path:
    """trstprl and hinctnta with their refusals, don't knows and no answers lettered .a, .b, .c, labelled ``words``
    (as a data portal subset shifts the letters)."""
    df, meta = real
    x = df[["idno", "cntry", "essround", "gndr", "trstprl", "hinctnta", "pspwght", "pweight"]].copy()
    labels: dict[str, dict[Any, str]] = {"gndr": {int(k): t for k, t in meta.variable_value_labels["gndr"].items()}}
    for v in ("trstprl", "hinctnta"):
        col = x[v].astype(object)
        col[x[v] == 77] = "a"
        col[x[v] == 88] = "b"
        col[x[v] == 99] = "c"
        x[v] = col
        labels[v] = {**{int(k): t for k, t in meta.variable_value_labels[v].items() if k < 77}, **words}
    folder.mkdir()
    pyreadstat.write_dta(x, str(folder / "ESS8FR.dta"), variable_value_labels=labels,
                         missing_user_values={"trstprl": ["a", "b", "c"], "hinctnta": ["a", "b", "c"]})
    return folder


READ = "SELECT {0}_missing, count(*) FROM respondents WHERE {0}_missing IN ('refused', 'dont_know', 'no_answer', " \
       "'not_applicable') GROUP BY 1 ORDER BY 1"


@pytest.mark.parametrize("words", [{"a": "Odmowa", "b": "Nie wiem", "c": "Brak odpowiedzi"},
                                   {"a": "Refusal", "b": "Don't know", "c": "No answer"}])
def test_stata_letters_labelled_in_a_national_language_say_their_reasons(real: tuple[pd.DataFrame, Any],
                                                                         tmp_path: Path, words: dict[str, str]) -> None:
    """.a 'Odmowa' (refusal) was read by the ESS convention as not applicable, without a warning."""
    folder = _letters(real, tmp_path / "dta", words)
    db = tmp_path / "l.duckdb"
    code, out, err = run("build", "--data", str(folder), "--db", str(db))
    assert code == 0, err
    assert "unread-letter-labels" not in out + err
    raw = real[0]
    assert _counts(db, READ.format("trust_parliament")) == [
        ("dont_know", int((raw.trstprl == 88).sum())), ("refused", int((raw.trstprl == 77).sum()))] == [
        ("dont_know", 25), ("refused", 2)]
    assert _counts(db, READ.format("income_decile")) == [
        ("dont_know", int((raw.hinctnta == 88).sum())), ("refused", int((raw.hinctnta == 77).sum()))] == [
        ("dont_know", 59), ("refused", 127)]


def test_stata_letters_whose_labels_name_no_reason_harmonise_reads_are_a_warning(real: tuple[pd.DataFrame, Any],
                                                                                 tmp_path: Path) -> None:
    """Labels in a wording the list lacks (Turkish here) keep the convention's reasons, with a warning naming the
    variables, letters, labels and rows; the rule's own `missing` for a letter settles it."""
    folder = _letters(real, tmp_path / "dta", {"a": "Reddetti", "b": "Fikri yok", "c": "Cevap yok"})
    code, out, _ = run("validate", "--data", str(folder))
    path = folder / "ESS8FR.dta"
    assert code == 0
    assert [line for line in out.splitlines() if "Stata missing letters" in line] == [
        (f"warning: ess wave 8: {path}: the labels of its Stata missing letters name no missing reason harmonise "
        "reads, so the crosswalk's convention gives their reasons, whatever the labels say: hinctnta .a 'Reddetti' "
        "(127 row(s)) as not_applicable, .b 'Fikri yok' (59 row(s)) as refused; trstprl .a 'Reddetti' (2 row(s)) as "
        "not_applicable, .b 'Fikri yok' (25 row(s)) as refused — where "
        "a label names another reason, those rows' reasons are stored wrongly — give the letters the reasons their "
        "labels name in the rules' `missing` (a wave override, e.g. {'.a': refused, '.b': dont_know, '.c': "
        "no_answer}); labels read as reasons: 'Refusal', \"Don't know\", 'No answer', 'Not applicable', 'Not "
        "available' and their usual wordings in the ESS languages (spec.resolve.NATIONAL_MISSING_LABELS)")]
