"""Declared codebooks from real files (harmonise/authoring/codebook_extract.py): merging a wave's files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyreadstat
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from harmonise.authoring.codebook_extract import dump, fullest, merge, refresh
from harmonise.readers.files import open_source
from harmonise.spec.codebook import CodebookVariable, SourceCodebook
from harmonise.spec.source import SourceMeta, VarMeta

CUT = "ISCED 5A medium, bachelor/equivalent from upper/single tier"  # 60 characters, as ESS8FR.sav cuts it
FULL = CUT + " tertiary"


def _meta(origin: str, *variables: VarMeta, fmt: str = "sav", encoding: str | None = "UTF-8") -> SourceMeta:
    return SourceMeta(origin=f"/data/{origin}", variables={v.name: v for v in variables}, format=fmt,
                      encoding=encoding, rows=10)


def _cntry(labels: dict[str, str]) -> VarMeta:
    return VarMeta("cntry", "Country", "string", width=2, format="A2", measure="nominal", labels=labels)


def _edulvlb(labels: dict[int, str], *, values: list[int] | None = None,
             ranges: list[tuple[float, float]] | None = None) -> VarMeta:
    return VarMeta("edulvlb", "Highest level of education", "numeric", format="F4.0", measure="nominal",
                   labels=labels, missing_values=list(values or []), missing_ranges=list(ranges or []))


def test_merge_keeps_every_code_and_the_full_label_and_notes_each_difference() -> None:
    fr = _meta("ESS8FR.sav", _cntry({"FR": "France"}),
               _edulvlb({620: CUT, 7777: "Refusal"}, values=[7777, 8888, 9999]))
    pl = _meta("ESS8PL.sav", _cntry({"FR": "France", "PL": "Poland"}),
               _edulvlb({620: FULL, 7777: "Refusal"}, values=[7777, 8888, 9999]))
    ie = _meta("ESS6IE.sav", _edulvlb({620: FULL, 7777: "Refused"}, ranges=[(7777.0, 9999.0)]))
    merged = merge([fr, pl, ie])
    assert list(merged) == ["cntry", "edulvlb"]
    cntry = merged["cntry"]
    assert (cntry.meta.labels, cntry.files) == ({"FR": "France", "PL": "Poland"}, ["ESS8FR.sav", "ESS8PL.sav"])
    assert cntry.notes == ["1 code not labelled in ESS8FR.sav: 'PL'"]
    edu = merged["edulvlb"]
    assert edu.meta.labels == {620: FULL, 7777: "Refusal"}  # as long as 'Refused', and commoner
    assert (edu.meta.missing_values, edu.meta.missing_ranges) == ([7777, 8888, 9999], [])
    assert edu.notes == [
        "1 label is cut short in ESS8FR.sav (the full text declared)",
        ("1 code labelled differently, the fullest label declared: "
         "7777 'Refusal' (ESS8FR.sav, ESS8PL.sav); 'Refused' (ESS6IE.sav)"),
        ("missing values declared differently: values 7777, 8888, 9999 (ESS8FR.sav, ESS8PL.sav); "
         "range 7777-9999 (ESS6IE.sav); the commonest declared"),
    ]


def test_merge_notes_a_storage_type_change_and_keeps_the_first() -> None:
    a = _meta("A.sav", VarMeta("idno", "Id", "numeric", format="F8.0"))
    b = _meta("B.sav", VarMeta("idno", "Respondent id", "string", width=8, format="A8"))
    got = merge([a, b])["idno"]
    assert (got.meta.type, got.meta.label, got.meta.width) == ("numeric", "Id", None)
    assert got.notes == ["storage type differs: numeric (A.sav); string (B.sav); declared numeric"]


def test_many_differences_are_counted_after_the_first_five() -> None:
    a = _meta("A.sav", _cntry({f"C{i}": f"Country {i}" for i in range(8)}))
    b = _meta("B.sav", _cntry({"C0": "Country 0"}))
    assert merge([a, b])["cntry"].notes == [
        "7 codes not labelled in B.sav: 'C1', 'C2', 'C3', 'C4', 'C5' and 2 more"]


@given(st.lists(st.text(min_size=0, max_size=70), min_size=1, max_size=6))
def test_fullest_is_one_of_the_texts_and_never_a_cut_of_another(texts: list[str]) -> None:
    best = fullest(texts)
    assert best in texts
    assert not any(t != best and t.startswith(best) for t in texts)


def _base() -> SourceCodebook:
    def var(name: str, **kw: object) -> CodebookVariable:
        return CodebookVariable.model_validate({"name": name, "type": "numeric", "evidence": "recalled", **kw})

    return SourceCodebook(survey="ess", wave="8", file="ESS8e02_1.sav", format="sav", encoding="WINDOWS-1252",
                          names="seen", notes="old", variables=[
                              var("trstprl", label="Trust", labels={0: "No trust", 77: "Refusal"},
                                  missing={"values": [77, 88, 99]}),
                              var("edulvlb", label="Education", labels={620: CUT}),
                              var("atchctr", label="Attached", missing={"range": [77, 99]})])


def test_refresh_declares_seen_variables_relabels_from_stata_and_keeps_the_rest() -> None:
    sav = _meta("ESS8PL.sav", _edulvlb({620: FULL, 7777: "Refusal"}, values=[7777, 8888, 9999]))
    dta = _meta("ESS8.dta", VarMeta("trstprl", "Trust in country's parliament", "numeric", format="%2.0f",
                                    labels={0: "No trust at all", 10: "Complete trust"}, extended={"b": "Refusal"}),
                fmt="dta", encoding=None)
    doc = refresh([sav, dta], survey="ess", wave="8", file="ESS8e02_1.sav", fmt="sav", base=_base(),
                  notes="new", remarks={"atchctr": "Absent from ESS8PL.sav."})
    assert {k: v for k, v in doc.items() if k != "variables"} == {
        "survey": "ess", "wave": "8", "file": "ESS8e02_1.sav", "format": "sav", "encoding": "UTF-8",
        "names": "seen", "notes": "new"}
    trstprl, edulvlb, atchctr = doc["variables"]
    assert trstprl == {
        "name": "trstprl", "label": "Trust in country's parliament", "type": "numeric",
        "labels": {0: "No trust at all", 77: "Refusal", 10: "Complete trust"},
        "missing": {"values": [77, 88, 99]},
        "notes": "Seen in ESS8.dta (Stata): its name, label and value labels; storage and missing declaration as "
                 "declared before.",
        "evidence": "seen"}
    assert edulvlb == {
        "name": "edulvlb", "label": "Highest level of education", "type": "numeric", "format": "F4.0",
        "measure": "nominal", "labels": {620: FULL, 7777: "Refusal"}, "missing": {"values": [7777, 8888, 9999]},
        "notes": "Seen in ESS8PL.sav.", "evidence": "seen"}
    assert atchctr == {"name": "atchctr", "label": "Attached", "type": "numeric", "missing": {"range": [77, 99]},
                       "notes": "Absent from ESS8PL.sav.", "evidence": "recalled"}


def test_refresh_renames_through_the_variable_list_and_refuses_an_unknown_one() -> None:
    sav = _meta("ESS6IE.sav", _cntry({"IE": "Ireland"}))
    doc = refresh([sav], survey="ess", wave="6", file="ESS6IE.sav", fmt="sav", variables=["cntry"])
    assert doc["rows"] == 10  # the codebook describes that very file
    assert [v["name"] for v in doc["variables"]] == ["cntry"]
    with pytest.raises(ValueError, match="'cntbrthb' is in none of the files and not in the base codebook"):
        refresh([sav], survey="ess", wave="6", file="x.sav", fmt="sav", variables=["cntbrthb"])


def test_refresh_from_written_files_round_trips_through_the_codebook_model(tmp_path: Path) -> None:
    paths = []
    for name, codes in (("A.sav", ["FR", "DE"]), ("B.sav", ["FR", "PL"])):
        df = pd.DataFrame({"cntry": codes, "trstprl": [5.0, 77.0]})
        path = tmp_path / name
        pyreadstat.write_sav(df, str(path), column_labels=["Country", "Trust in parliament"],
                             variable_value_labels={"cntry": {c: c.lower() for c in codes},
                                                    "trstprl": {0.0: "No trust", 77.0: "Refusal"}},
                             missing_ranges={"trstprl": [77]})
        paths.append(path)
    doc = refresh([open_source(p).meta for p in paths], survey="x", wave="1", file="X1.sav", fmt="sav",
                  notes="two files")
    text = dump(doc, "Declared source codebook: test")
    assert text.startswith("# Declared source codebook: test\nsurvey: x\n")
    cb = SourceCodebook.model_validate(yaml.safe_load(text))
    cntry, trstprl = cb.variables
    assert (cntry.labels, cntry.evidence) == ({"FR": "fr", "DE": "de", "PL": "pl"}, "seen")
    assert cntry.notes == "Seen in A.sav, B.sav. 1 code not labelled in B.sav: 'DE'. 1 code not labelled in A.sav: 'PL'."
    assert trstprl.missing is not None and trstprl.missing.values == [77]
