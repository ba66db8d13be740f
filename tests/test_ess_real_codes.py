"""The shipped ESS code tables against every real ESS file under ../shared/data (pyreadstat and YAML only).

Every labelled code, and every value present, of every country, language and education variable
of every real file must be mapped by its code table or carry a missing reason there (Stata extended
missing letters get theirs from the crosswalk's survey-level ``missing.extended``). And every
labelled country or language code must be labelled, in the file, with the name of the row it is
mapped to or one of the row's aliases: the data behind the label-versus-code check. No harmonise
code runs here, so these tests judge the tables, not the pipeline.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
import pyreadstat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
REAL = DATA / "ess_real"
TABLES = ROOT / "mappings" / "tables"

# variable-name patterns of every round (rounds 1-4 cntbrth/cntbrtha/b, lnghoma/b, edulvla; 5+ the rest)
SCHEMES = [
    (re.compile(r"(cntry|cntbrth[a-d]?|ctzship[a-d]?|fbrncnt[a-c]?|mbrncnt[a-c]?)"), "ess_country_codes", "countries"),
    (re.compile(r"lnghom(1|2|a|b)"), "ess_language_codes", "languages"),
    (re.compile(r"edulvl[pfm]?a"), "ess_edulvla", None),
    (re.compile(r"edulvl[pfm]?b"), "ess_edulvlb", None),
    (re.compile(r"eisced[pfm]?"), "ess_eisced", None),
]


def real_files() -> list[Path]:
    found = sorted(p for p in REAL.glob("*/*") if p.suffix.lower() in (".sav", ".zsav", ".dta"))
    return found + sorted((DATA / "ess8_fr").glob("*.sav")) if found else []


FILES = real_files()
needs_files = pytest.mark.skipif(not FILES, reason=f"no real ESS files under {REAL}")


@cache
def table(name: str) -> dict[str, Any]:
    data = yaml.safe_load((TABLES / f"{name}.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@cache
def extended_reasons() -> dict[str, str]:
    cw = yaml.safe_load((ROOT / "mappings" / "ess.yaml").read_text(encoding="utf-8"))
    return dict(cw["missing"]["extended"])


def norm(code: object) -> object:
    if isinstance(code, float) and code.is_integer():
        return int(code)
    return code.rstrip() if isinstance(code, str) else code


@cache
def read(path: Path) -> tuple[pd.DataFrame, Any]:
    """The scheme variables' values and the file's metadata. Stata files before format 118 carry no
    encoding; a byte-transparent latin-1 read keeps their (ASCII) codes intact."""
    reader = pyreadstat.read_dta if path.suffix.lower() == ".dta" else pyreadstat.read_sav
    try:
        _, meta = reader(str(path), metadataonly=True, user_missing=True)
        encoding = None
    except pyreadstat.ReadstatError:
        encoding = "latin1"
        _, meta = reader(str(path), metadataonly=True, user_missing=True, encoding=encoding)
    columns = [n for n in meta.column_names if scheme(n)]
    kw = {"encoding": encoding} if encoding else {}
    df, _ = reader(str(path), usecols=columns, user_missing=True, **kw) if columns else (pd.DataFrame(), None)
    return df, meta


def scheme(name: str) -> tuple[str, str | None] | None:
    for pattern, code_table, reference in SCHEMES:
        if pattern.fullmatch(name.lower()):
            return code_table, reference
    return None


def codes_of(path: Path) -> dict[str, dict[object, str | None]]:
    """Per scheme variable: every labelled code (with its label) and every value present (label None)."""
    df, meta = read(path)
    out: dict[str, dict[object, str | None]] = {}
    for name in df.columns:
        labels = {norm(k): v for k, v in (meta.variable_value_labels.get(name) or {}).items()}
        present = {norm(v) for v in df[name].dropna().unique()} - {""}
        out[name] = {**dict.fromkeys(present - set(labels)), **labels}
    return out


def unaccounted(code_table: str, codes: dict[object, str | None], stata: bool) -> list[object]:
    t = table(code_table)
    known = set(t["map"]) | set(t["missing"])
    letters = set(extended_reasons()) if stata else set()
    return sorted((c for c in codes if c not in known and not (isinstance(c, str) and c in letters
                                                                and t["key_type"] == "integer")), key=str)


def plain(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", " ", ascii_text.lower()).strip()


def names_of(row: dict[str, Any]) -> set[str]:
    names = [row["name"], *row["name"].split("; "), *row.get("aliases", [])]
    return {plain(n) for n in names}


@needs_files
@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_every_code_is_mapped_or_missing(path: Path) -> None:
    stata = path.suffix.lower() == ".dta"
    found = codes_of(path)
    assert found, f"{path.name}: no country, language or education variable"
    gaps = {}
    for name, codes in found.items():
        code_table, _ = scheme(name)  # type: ignore[misc]
        missing = unaccounted(code_table, codes, stata)
        if missing:
            gaps[name] = [(c, codes[c]) for c in missing]
    assert gaps == {}


@needs_files
@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_labels_name_the_row_each_code_maps_to(path: Path) -> None:
    contradictions = []
    for name, codes in codes_of(path).items():
        code_table, reference = scheme(name)  # type: ignore[misc]
        if reference is None:
            continue
        rows = {r["code"]: r for r in table(reference)["rows"]}
        mapping = table(code_table)["map"]
        for code, label in codes.items():
            if label is None or code not in mapping:
                continue
            row = rows[mapping[code]]
            if plain(label) not in names_of(row):
                contradictions.append((name, code, label, row["code"], row["name"]))
    assert contradictions == []


def test_the_checks_see_a_gap_and_a_contradiction() -> None:
    """The helpers flag an unknown code and a label naming another country (an index-coded file)."""
    assert unaccounted("ess_country_codes", {"QQ": "Nowhere", "FR": "France", "6666": None}, False) == ["QQ"]
    assert unaccounted("ess_edulvlb", {"b": "Refusal", 113: "ISCED 1"}, True) == []
    assert unaccounted("ess_edulvlb", {"b": "Refusal"}, False) == ["b"]
    rows = {r["code"]: r for r in table("countries")["rows"]}
    albania = rows[table("ess_country_codes")["map"]["AL"]]
    assert plain("Croatia") not in names_of(albania)
    assert plain("ALBANIA ") in names_of(albania)
    assert plain("Turkey") in names_of(rows["TR"]) and plain("Türkiye") in names_of(rows["TR"])
