"""Checks on the vetted code tables in mappings/tables/ (plain YAML data).

These tests read the files with yaml.safe_load only, so they hold whatever the
package's loader does: structure, key types, cross-table references, and the
facts the tables are vetted for (EU membership, legacy codes, anchors, ISCED).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

TABLES = Path(__file__).parents[1] / "mappings" / "tables"

CODE_MAPS = {
    "ess_country_codes",
    "evs_country_codes",
    "eumidis_country_codes",
    "ess_language_codes",
    "isced2011_levels",
    "ess_eisced",
    "ess_edulvlb",
    "ess_edulvla",
    "evs_isced2011",
    "evs_isced1997",
    "eumidis_education",
}
REFERENCES = {"countries", "languages"}
VETTED = CODE_MAPS | REFERENCES

MISSING_REASONS = {
    "not_asked",
    "not_applicable",
    "refused",
    "dont_know",
    "no_answer",
    "not_available",
    "invalid",
    "other_missing",
}
CODE_MAP_REQUIRED = {
    "table",
    "kind",
    "description",
    "source",
    "key_type",
    "target",
    "map",
    "missing",
}
CODE_MAP_ALLOWED = CODE_MAP_REQUIRED | {"labels", "notes", "status"}
REFERENCE_REQUIRED = {"table", "kind", "description", "key", "rows"}
REFERENCE_ALLOWED = REFERENCE_REQUIRED | {"status", "host_languages"}
LEVELS = {"low", "medium", "high"}

EU27 = {
    "AT",
    "BE",
    "BG",
    "HR",
    "CY",
    "CZ",
    "DK",
    "EE",
    "FI",
    "FR",
    "DE",
    "GR",
    "HU",
    "IE",
    "IT",
    "LV",
    "LT",
    "LU",
    "MT",
    "NL",
    "PL",
    "PT",
    "RO",
    "SK",
    "SI",
    "ES",
    "SE",
}
EU_FROM = {
    **dict.fromkeys(["BE", "DE", "FR", "IT", "LU", "NL"], dt.date(1958, 1, 1)),
    **dict.fromkeys(["DK", "IE", "GB"], dt.date(1973, 1, 1)),
    "GR": dt.date(1981, 1, 1),
    **dict.fromkeys(["ES", "PT"], dt.date(1986, 1, 1)),
    **dict.fromkeys(["AT", "FI", "SE"], dt.date(1995, 1, 1)),
    **dict.fromkeys(
        ["CY", "CZ", "EE", "HU", "LV", "LT", "MT", "PL", "SK", "SI"], dt.date(2004, 5, 1)
    ),
    **dict.fromkeys(["BG", "RO"], dt.date(2007, 1, 1)),
    "HR": dt.date(2013, 7, 1),
}
EU_TERRITORIES = {"AX", "GF", "GP", "MQ", "RE", "YT", "MF"}
EXTRA_GROUPS = {
    "DDDE": "eu",
    "SUHH": "non_eu",
    "CSHH": "eu",
    "YUCS": "non_eu",
    "CSXX": "non_eu",
    "TPTL": "non_eu",
    "ANHH": "non_eu",
    "XK": "non_eu",
    "XX": "non_eu",
    "ZZ": "unknown",
}
FORMER = {"DDDE", "SUHH", "CSHH", "YUCS", "CSXX", "TPTL", "ANHH"}
USER_ASSIGNED = {"XK", "XX", "ZZ"}
# UN M49 regions ESS lists from round 9: European ones group unknown, the others non_eu
EUROPEAN_REGIONS = {"039", "150", "151", "154", "155"}
OTHER_REGIONS = {
    "002", "005", "009", "011", "013", "014", "015", "017", "018", "019", "021", "029", "030", "034",
    "035", "053", "054", "057", "061", "142", "143", "145", "202", "419",
}
REGIONS = EUROPEAN_REGIONS | OTHER_REGIONS
ESS_COUNTRIES = {
    "AL",
    "AT",
    "BE",
    "BG",
    "CH",
    "CY",
    "CZ",
    "DE",
    "DK",
    "EE",
    "ES",
    "FI",
    "FR",
    "GB",
    "GR",
    "HR",
    "HU",
    "IE",
    "IL",
    "IS",
    "IT",
    "LT",
    "LU",
    "LV",
    "ME",
    "MK",
    "NL",
    "NO",
    "PL",
    "PT",
    "RO",
    "RS",
    "RU",
    "SE",
    "SI",
    "SK",
    "TR",
    "UA",
    "XK",
}
EVS_COUNTRIES = {
    "AL",
    "AM",
    "AT",
    "AZ",
    "BA",
    "BE",
    "BG",
    "BY",
    "CH",
    "CY",
    "CZ",
    "DE",
    "DK",
    "EE",
    "ES",
    "FI",
    "FR",
    "GB",
    "GE",
    "GR",
    "HR",
    "HU",
    "IE",
    "IS",
    "IT",
    "LT",
    "LU",
    "LV",
    "MD",
    "ME",
    "MK",
    "MT",
    "NL",
    "NO",
    "PL",
    "PT",
    "RO",
    "RS",
    "RU",
    "SE",
    "SI",
    "SK",
    "TR",
    "UA",
    "XK",
}
EVS_NEGATIVES = {
    -1: "dont_know",
    -2: "no_answer",
    -3: "not_applicable",
    -4: "not_asked",
    -5: "other_missing",
}


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects a key given twice in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


@cache
def load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((TABLES / f"{name}.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict), name
    return data


def rows_by_code(name: str) -> dict[str, dict[str, Any]]:
    return {r["code"]: r for r in load(name)["rows"]}


def country_codes() -> set[str]:
    return set(rows_by_code("countries"))


def current_countries() -> dict[str, dict[str, Any]]:
    return {
        c: r
        for c, r in rows_by_code("countries").items()
        if not r.get("former") and not r.get("user_assigned") and not r.get("world_region")
    }


def language_codes() -> set[str]:
    return set(rows_by_code("languages"))


# ------------------------------------------------------------------ every file


def test_the_vetted_files_are_all_there():
    present = {p.stem for p in TABLES.glob("*.yaml")}
    assert VETTED <= present, sorted(VETTED - present)


@pytest.mark.parametrize("name", sorted(VETTED))
def test_file_has_no_anchors_aliases_or_duplicate_keys(name):
    text = (TABLES / f"{name}.yaml").read_text(encoding="utf-8")
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        assert not isinstance(event, yaml.AliasEvent), (name, event.start_mark)
        assert getattr(event, "anchor", None) is None, (name, event.start_mark)
    assert yaml.load(text, Loader=_UniqueKeyLoader) == load(name)


@pytest.mark.parametrize("name", sorted(VETTED))
def test_top_level_keys(name):
    data = load(name)
    keys = set(data)
    if name in REFERENCES:
        assert data["kind"] == "reference"
        assert REFERENCE_REQUIRED <= keys, sorted(REFERENCE_REQUIRED - keys)
        assert keys <= REFERENCE_ALLOWED, sorted(keys - REFERENCE_ALLOWED)
        assert data["key"] == "code"
        assert isinstance(data["rows"], list) and data["rows"]
    else:
        assert data["kind"] == "code_map"
        assert CODE_MAP_REQUIRED <= keys, sorted(CODE_MAP_REQUIRED - keys)
        assert keys <= CODE_MAP_ALLOWED, sorted(keys - CODE_MAP_ALLOWED)
        assert data["key_type"] in ("string", "integer")
        assert isinstance(data["map"], dict) and data["map"]
        assert isinstance(data["missing"], dict)
        assert isinstance(data["source"], str) and data["source"].strip()
    assert data["table"] == name
    assert isinstance(data["description"], str) and len(data["description"]) > 80


@pytest.mark.parametrize("name", sorted(CODE_MAPS))
def test_key_types_match_key_type(name):
    data = load(name)
    want = str if data["key_type"] == "string" else int
    for part in ("map", "missing", "labels", "notes"):
        for key in data.get(part, {}):
            assert type(key) is want, (name, part, key)


@pytest.mark.parametrize("name", sorted(CODE_MAPS))
def test_map_and_missing_never_overlap_and_reasons_are_known(name):
    data = load(name)
    assert set(data["map"]).isdisjoint(data["missing"]), sorted(
        set(data["map"]) & set(data["missing"])
    )
    assert set(data["missing"].values()) <= MISSING_REASONS, sorted(
        set(data["missing"].values()) - MISSING_REASONS
    )


@pytest.mark.parametrize("name", sorted(CODE_MAPS))
def test_labels_cover_every_code_and_notes_name_known_codes(name):
    data = load(name)
    codes = set(data["map"]) | set(data["missing"])
    if "labels" in data:
        assert set(data["labels"]) == codes, sorted(set(data["labels"]) ^ codes, key=str)
        assert all(isinstance(v, str) and v for v in data["labels"].values())
    assert set(data.get("notes", {})) <= codes
    assert all(isinstance(v, str) and v for v in data.get("notes", {}).values())


@pytest.mark.parametrize("name", sorted(CODE_MAPS))
def test_targets_exist(name):
    data = load(name)
    values = set(data["map"].values())
    target = data["target"]
    if target == "country":
        assert values <= country_codes(), sorted(values - country_codes())
    elif target == "language":
        assert values <= language_codes(), sorted(values - language_codes())
    elif target == "isced":
        assert values <= set(range(9)), sorted(values)
    elif target == "education_level":
        assert values <= LEVELS, sorted(values)
    else:
        pytest.fail(f"{name}: unexpected target {target!r}")


# ------------------------------------------------------------------ countries


def test_countries_has_249_current_iso_rows_and_the_extras():
    rows = load("countries")["rows"]
    codes = [r["code"] for r in rows]
    assert len(codes) == len(set(codes)) == 249 + len(FORMER | USER_ASSIGNED | REGIONS)
    current = current_countries()
    assert len(current) == 249
    assert all(re.fullmatch(r"[A-Z]{2}", c) for c in current)
    assert set(codes) - set(current) == FORMER | USER_ASSIGNED | REGIONS
    assert not {"UK", "EL"} & set(codes)
    assert {"GB", "GR"} <= set(current)
    for code, row in current.items():
        assert re.fullmatch(r"[A-Z]{3}", row["alpha3"]), code
        assert type(row["numeric"]) is int and 1 <= row["numeric"] <= 999, code
        assert isinstance(row["name"], str) and row["name"], code
    assert len({r["alpha3"] for r in current.values()}) == 249
    assert len({r["numeric"] for r in current.values()}) == 249


def test_country_spot_checks():
    rows = rows_by_code("countries")
    assert (rows["NO"]["name"], rows["NO"]["alpha3"], rows["NO"]["numeric"]) == (
        "Norway",
        "NOR",
        578,
    )
    assert (rows["DE"]["alpha3"], rows["DE"]["numeric"]) == ("DEU", 276)
    assert (rows["GB"]["alpha3"], rows["GB"]["numeric"]) == ("GBR", 826)
    assert (rows["GR"]["alpha3"], rows["GR"]["numeric"]) == ("GRC", 300)
    assert (rows["TL"]["alpha3"], rows["TL"]["numeric"]) == ("TLS", 626)
    assert (rows["AF"]["numeric"], rows["ZW"]["numeric"]) == (4, 716)
    assert (rows["DDDE"]["alpha3"], rows["DDDE"]["numeric"]) == ("DDR", 278)
    assert (rows["SUHH"]["alpha3"], rows["SUHH"]["numeric"]) == ("SUN", 810)
    assert (rows["CSHH"]["alpha3"], rows["CSHH"]["numeric"]) == ("CSK", 200)
    assert (rows["YUCS"]["alpha3"], rows["YUCS"]["numeric"]) == ("YUG", 890)
    assert (rows["CSXX"]["alpha3"], rows["CSXX"]["numeric"]) == ("SCG", 891)
    assert (rows["ANHH"]["alpha3"], rows["ANHH"]["numeric"]) == ("ANT", 530)
    assert (rows["002"]["name"], rows["151"]["name"], rows["419"]["name"]) == (
        "Africa",
        "Eastern Europe",
        "Latin America and the Caribbean",
    )


def test_eu27_2020_flag_is_exactly_the_27():
    flagged = {c for c, r in rows_by_code("countries").items() if r["eu27_2020"] is True}
    assert len(flagged) == 27
    assert flagged == EU27
    assert all(type(r["eu27_2020"]) is bool for r in load("countries")["rows"])


def test_eu_accession_and_withdrawal_dates():
    rows = rows_by_code("countries")
    eu_from = {c: r["eu_from"] for c, r in rows.items() if "eu_from" in r}
    assert eu_from == EU_FROM
    eu_until = {c: r["eu_until"] for c, r in rows.items() if "eu_until" in r}
    assert eu_until == {"GB": dt.date(2020, 1, 31)}


def test_eu27_2020_groups():
    rows = rows_by_code("countries")
    for code, row in rows.items():
        if code in EXTRA_GROUPS:
            want = EXTRA_GROUPS[code]
        elif code in REGIONS:
            want = "unknown" if code in EUROPEAN_REGIONS else "non_eu"
        elif code in EU27 or code in EU_TERRITORIES:
            want = "eu"
        else:
            want = "non_eu"
        assert row["eu27_2020_group"] == want, code
    assert rows["GB"]["eu27_2020_group"] == "non_eu"


def test_former_user_assigned_and_region_rows_are_flagged_and_explained():
    for code, row in rows_by_code("countries").items():
        assert row.get("former", False) is (code in FORMER), code
        assert row.get("user_assigned", False) is (code in USER_ASSIGNED), code
        assert row.get("world_region", False) is (code in REGIONS), code
        if code in FORMER | USER_ASSIGNED | REGIONS:
            assert isinstance(row.get("note"), str) and len(row["note"]) > 20, code
            assert row["eu27_2020"] is False
        if code in REGIONS:
            assert re.fullmatch(r"[0-9]{3}", code) and "alpha3" not in row and "numeric" not in row, code
            assert f"UN M49 region {code}" in row["note"], code


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_aliases_are_other_names(name):
    """aliases: a list of distinct names other than the row's own; no alias names two rows."""
    rows = load(name)["rows"]
    with_aliases = [r for r in rows if "aliases" in r]
    assert with_aliases, name
    owner: dict[str, str] = {}
    for row in with_aliases:
        aliases = row["aliases"]
        assert isinstance(aliases, list) and aliases, row["code"]
        assert all(isinstance(a, str) and a.strip() == a and a for a in aliases), row["code"]
        assert len(aliases) == len(set(aliases)) and row["name"] not in aliases, row["code"]
        for alias in aliases:
            assert owner.setdefault(alias, row["code"]) == row["code"], (alias, owner[alias], row["code"])


# ------------------------------------------------------------------ country maps


def test_ess_country_codes():
    data = load("ess_country_codes")
    numeric = {k: v for k, v in data["map"].items() if k.isdigit()}
    legacy = {k: v for k, v in numeric.items() if v not in REGIONS}
    assert legacy == {
        "01": "DDDE",
        "02": "SUHH",
        "03": "CSHH",
        "04": "YUCS",
        "05": "TPTL",
        "06": "CSXX",
        "65": "XX",
        "1000": "DDDE",
        "2000": "SUHH",
        "3000": "CSHH",
        "4000": "YUCS",
        "5000": "TPTL",
        "6000": "CSXX",
        "6500": "XX",
    }
    # round 9 on: the UN M49 number without leading zeros, mapped to the region row
    regions = {k: v for k, v in numeric.items() if v in REGIONS}
    assert {f"{int(k):03d}" for k in regions} == REGIONS
    assert all(v == f"{int(k):03d}" and not k.startswith("0") for k, v in regions.items())
    assert data["missing"] == {
        "66": "not_applicable",
        "77": "refused",
        "88": "dont_know",
        "99": "no_answer",
        "6666": "not_applicable",
        "7777": "refused",
        "8888": "dont_know",
        "9999": "no_answer",
    }
    alpha = {k: v for k, v in data["map"].items() if k.isalpha()}
    former_alpha = {"AN": "ANHH", "SU": "SUHH", "TP": "TPTL", "YU": "YUCS"}
    assert {k: v for k, v in alpha.items() if k != v} == former_alpha
    assert set(alpha) == set(current_countries()) | {"XK"} | set(former_alpha)
    assert "CS" not in data["map"]  # Czechoslovakia, then Serbia and Montenegro: mapped per round
    assert data["map"]["NO"] == "NO"


def test_evs_country_codes():
    data = load("evs_country_codes")
    for code, row in current_countries().items():
        assert data["map"][row["numeric"]] == code, code
    assert {k: data["map"][k] for k in (278, 810, 200, 890, 891, 626)} == {
        278: "DDDE",
        810: "SUHH",
        200: "CSHH",
        890: "YUCS",
        891: "CSXX",
        626: "TL",
    }
    assert data["map"][915] == "XK"
    assert len(data["map"]) == 249 + 6
    assert {k: v for k, v in data["missing"].items() if k >= -5} == EVS_NEGATIVES
    assert all(k < 0 for k in data["missing"])


def _plain(name: str) -> str:
    return unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()


def test_eumidis_country_codes_anchors():
    data = load("eumidis_country_codes")
    m = data["map"]
    assert data["status"] == "reconstructed"
    assert "RECONSTRUCTED" in data["description"]
    eu28 = [
        "AT",
        "BE",
        "BG",
        "HR",
        "CY",
        "CZ",
        "DK",
        "EE",
        "FI",
        "FR",
        "DE",
        "GR",
        "HU",
        "IE",
        "IT",
        "LV",
        "LT",
        "LU",
        "MT",
        "NL",
        "PL",
        "PT",
        "RO",
        "SK",
        "SI",
        "ES",
        "SE",
        "GB",
    ]
    assert [m[i] for i in range(1, 29)] == eu28
    assert set(eu28) - {"GB"} == EU27
    anchors = {
        143: "MA",
        157: "PK",
        168: "RU",
        187: "SO",
        207: "TR",
        227: "ZZ",
        229: "XX",
        233: "XK",
    }
    assert {k: m[k] for k in anchors} == anchors
    labels = data["labels"]
    assert (labels[143], labels[157], labels[168], labels[187], labels[207]) == (
        "Morocco",
        "Pakistan",
        "Russian Federation",
        "Somalia",
        "Turkey",
    )


def test_eumidis_country_codes_reconstruction_is_alphabetical_and_non_eu():
    data = load("eumidis_country_codes")
    m, labels = data["map"], data["labels"]
    block = list(range(29, 227))
    assert all(k in m for k in block)
    assert [_plain(labels[k]) for k in block] == sorted(_plain(labels[k]) for k in block)
    values = [m[k] for k in block]
    assert len(values) == len(set(values))
    assert not set(values) & (EU27 | {"GB"})
    assert set(m) == set(range(1, 227)) | {227, 229, 233}
    assert data["missing"] == {
        996: "refused",
        997: "other_missing",
        998: "not_applicable",
        999: "dont_know",
        -2: "not_applicable",
    }


# ------------------------------------------------------------------ languages


def test_language_rows():
    rows = load("languages")["rows"]
    codes = [r["code"] for r in rows]
    assert len(codes) == len(set(codes)) == 488
    assert all(re.fullmatch(r"[A-Z]{3}", c) for c in codes)
    two = [r["iso639_1"] for r in rows if "iso639_1" in r]
    assert all(isinstance(t, str) and re.fullmatch(r"[a-z]{2}", t) for t in two)
    assert len(two) == len(set(two))
    by = rows_by_code("languages")
    assert {c: by[c].get("iso639_1") for c in ("GER", "FRE", "DUT", "NOR", "ENG", "CNR")} == {
        "GER": "de",
        "FRE": "fr",
        "DUT": "nl",
        "NOR": "no",
        "ENG": "en",
        "CNR": None,
    }
    # bibliographic, not terminology, forms
    assert not {"DEU", "FRA", "NLD", "CES", "ZHO", "FAS"} & set(codes)
    assert {"MIS", "MUL", "UND", "ZXX", "QAA", "QPL"} <= set(codes)


def test_host_languages():
    host = load("languages")["host_languages"]
    assert set(host) <= country_codes(), sorted(set(host) - country_codes())
    for country, langs in host.items():
        assert isinstance(langs, list) and langs, country
        assert len(langs) == len(set(langs)), country
        assert set(langs) <= language_codes(), (country, sorted(set(langs) - language_codes()))
    assert EU27 | ESS_COUNTRIES | EVS_COUNTRIES | {"GB", "NO", "CH", "IS", "LI"} <= set(host)
    assert host["BE"] == ["DUT", "FRE", "GER"]
    assert host["CH"] == ["GER", "FRE", "ITA", "ROH"]
    assert host["ES"] == ["SPA", "CAT", "BAQ", "GLG"]
    assert host["FR"] == ["FRE"]
    assert host["NO"] == ["NOR", "NOB", "NNO"]
    assert host["LU"] == ["LTZ", "FRE", "GER"]


def test_ess_language_codes():
    data = load("ess_language_codes")
    withdrawn = {"MOL": "RUM", "SCC": "SRP", "SCR": "HRV"}  # ISO 639-2 codes withdrawn in 2008
    assert {k: v for k, v in data["map"].items() if k != v} == withdrawn
    assert data["missing"] == {
        "000": "not_applicable",
        "777": "refused",
        "888": "dont_know",
        "999": "no_answer",
        "UND": "other_missing",
        "ZXX": "not_applicable",
    }
    assert set(data["map"]) | set(data["missing"]) == language_codes() | set(withdrawn) | {
        "000",
        "777",
        "888",
        "999",
    }
    assert {"MIS", "MUL", "QAA", "QPL", "ENM"} <= set(data["map"])


# ------------------------------------------------------------------ education


def test_isced2011_levels_boundaries():
    data = load("isced2011_levels")
    assert data["map"] == {
        0: "low",
        1: "low",
        2: "low",
        3: "medium",
        4: "medium",
        5: "high",
        6: "high",
        7: "high",
        8: "high",
    }
    assert data["missing"] == {}


def test_ess_eisced():
    data = load("ess_eisced")
    assert data["map"] == {
        1: "low",
        2: "low",
        3: "medium",
        4: "medium",
        5: "medium",
        6: "high",
        7: "high",
    }
    assert data["missing"] == {
        0: "not_available",
        55: "not_available",
        66: "not_applicable",
        77: "refused",
        88: "dont_know",
        99: "no_answer",
    }
    assert {0, 5, 55} <= set(data["notes"])


def test_ess_edulvlb():
    data = load("ess_edulvlb")
    m = data["map"]
    assert len(m) == 27
    assert (m[0], m[113], m[129], m[212], m[229], m[311], m[421], m[510], m[520]) == (
        0,
        1,
        1,
        2,
        2,
        3,
        4,
        5,
        5,
    )
    assert (m[610], m[620], m[710], m[720], m[800]) == (6, 6, 7, 7, 8)
    assert all(v == k // 100 for k, v in m.items())
    assert data["missing"] == {
        5555: "not_available",
        6666: "not_applicable",
        7777: "refused",
        8888: "dont_know",
        9999: "no_answer",
    }


def test_ess_edulvlb_agrees_with_eisced_groups_except_es_isced_iv():
    """edulvlb -> isced -> level must agree with the ES-ISCED grouping, except for the
    short-cycle tertiary codes that ES-ISCED IV counts as medium."""
    levels = load("isced2011_levels")["map"]
    edulvlb = load("ess_edulvlb")["map"]
    derived = {k: levels[v] for k, v in edulvlb.items()}
    assert {k for k, v in derived.items() if v == "low"} == {
        0,
        113,
        129,
        212,
        213,
        221,
        222,
        223,
        229,
    }
    assert {k for k, v in derived.items() if v == "high"} == {510, 520, 610, 620, 710, 720, 800}


def test_ess_edulvla():
    data = load("ess_edulvla")
    assert data["map"] == {1: "low", 2: "low", 3: "medium", 4: "medium", 5: "high"}
    assert data["missing"] == {0: "not_available", 55: "not_available", 77: "refused", 88: "dont_know", 99: "no_answer"}


def test_evs_isced_tables():
    d11 = load("evs_isced2011")
    assert d11["map"] == {i: i for i in range(9)}
    assert {k: v for k, v in d11["missing"].items() if k >= -5} == EVS_NEGATIVES
    d97 = load("evs_isced1997")
    assert d97["map"] == {
        0: "low",
        1: "low",
        2: "low",
        3: "medium",
        4: "medium",
        5: "high",
        6: "high",
    }
    assert d97["missing"] == EVS_NEGATIVES


def test_eumidis_education():
    data = load("eumidis_education")
    assert data["map"] == {1: 0, 2: 1, 3: 2, 4: 3, 5: 4, 6: 5, 7: 6, 8: 7}
    assert data["missing"] == {
        96: "refused",
        97: "other_missing",
        98: "not_applicable",
        99: "dont_know",
    }
    assert 8 in data["notes"]
    levels = load("isced2011_levels")["map"]
    assert [levels[data["map"][p]] for p in range(1, 9)] == [
        "low",
        "low",
        "low",
        "medium",
        "medium",
        "high",
        "high",
        "high",
    ]
