"""Checks for mappings/cities.yaml and the declared codebooks of the three city surveys.

These files are hand-written reference data; the tests pin their shape (keys the strict
loader accepts), their internal consistency (unique keys, NUTS nesting, typed value
labels, SPSS missing-value limits) and the facts in surveys.md (which cities each survey
sampled, LOCALMULTIDEM's city codes).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).parents[1]
CITIES = ROOT / "mappings" / "cities.yaml"
CODEBOOKS = {
    "ics": ROOT / "surveys" / "ics" / "codebook_2012.yaml",
    "localmultidem": ROOT / "surveys" / "localmultidem" / "codebook_2006.yaml",
    "ties": ROOT / "surveys" / "ties" / "codebook_2007.yaml",
}
WAVES = {"ics": "2012", "localmultidem": "2006", "ties": "2007"}

ICS = ("ics", "2012")
TIES = ("ties", "2007")
LMD = ("localmultidem", "2006")

# City (row name) -> survey waves that sampled it, from surveys.md.
EXPECTED_SAMPLED_BY: dict[str, set[tuple[str, str]]] = {
    "Antwerpen": {ICS, TIES},
    "Bruxelles/Brussel": {ICS, TIES},
    "Liège": {ICS},
    "Lyon": {ICS, LMD},
    "Paris": {ICS, TIES},
    "Berlin": {ICS, TIES},
    "Stuttgart": {ICS},
    "Budapest": {ICS, LMD},
    "Milano": {ICS, LMD},
    "Napoli": {ICS},
    "Faro": {ICS},
    "Lisboa": {ICS},
    "Setúbal": {ICS},
    "Barcelona": {ICS, TIES, LMD},
    "Madrid": {ICS, TIES, LMD},
    "Strasbourg": {TIES},
    "Frankfurt am Main": {TIES},
    "Wien": {TIES},
    "Linz": {TIES},
    "Amsterdam": {TIES},
    "Rotterdam": {TIES},
    "Zürich": {TIES, LMD},
    "Basel": {TIES},
    "Stockholm": {TIES, LMD},
    "Genève": {LMD},
    "London": {LMD},
    "Oslo": {LMD},
    "Torino": {LMD},
}
# Cities whose NUTS region must be usable as a region proxy.
EXPECTED_PROXIES = {
    "Berlin": "DE30",
    "Wien": "AT13",
    "Bruxelles/Brussel": "BE10",
    "Madrid": "ES30",
    "Budapest": "HU11",
    "Hamburg": "DE60",
    "Praha": "CZ01",
    "Oslo": "NO011",
    "Stockholm": "SE11",
    "London": "UKI",
}
NUTS_PREFIX_EXCEPTIONS = {"GR": "EL", "GB": "UK"}

CITY_TOP_KEYS = {"table", "kind", "description", "key", "rows"}
CITY_ROW_KEYS = {"code", "name", "country", "nuts2", "nuts3", "sampled_by", "region_proxy", "notes"}
CITY_ROW_REQUIRED = {"code", "name", "country", "nuts2", "nuts3", "sampled_by"}

CODEBOOK_KEYS = {"survey", "wave", "file", "format", "encoding", "names", "notes", "variables"}
CODEBOOK_REQUIRED = CODEBOOK_KEYS - {"encoding"}
VARIABLE_KEYS = {"name", "label", "type", "width", "format", "measure", "labels", "missing", "evidence"}
VARIABLE_REQUIRED = {"name", "label", "type", "evidence"}


def load(path: Path) -> Any:
    with path.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


@pytest.fixture(scope="module")
def cities() -> dict[str, Any]:
    return load(CITIES)


@pytest.fixture(scope="module")
def rows_by_name(cities: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in cities["rows"]}


def nuts_prefix(country: str) -> str:
    return NUTS_PREFIX_EXCEPTIONS.get(country, country)


def sampled(row: dict[str, Any]) -> set[tuple[str, str]]:
    return {(entry["survey"], entry["wave"]) for entry in row["sampled_by"]}


# --- cities.yaml -----------------------------------------------------------------------


def test_cities_top_level(cities: dict[str, Any]) -> None:
    assert set(cities) == CITY_TOP_KEYS
    assert cities["table"] == "cities"
    assert cities["kind"] == "reference"
    assert cities["key"] == "code"
    assert isinstance(cities["rows"], list)


def test_city_rows_have_known_keys_and_string_values(cities: dict[str, Any]) -> None:
    for row in cities["rows"]:
        assert set(row) <= CITY_ROW_KEYS, (row["code"], set(row) - CITY_ROW_KEYS)
        assert CITY_ROW_REQUIRED <= set(row), (row["code"], CITY_ROW_REQUIRED - set(row))
        for field in ("code", "name", "country", "nuts2", "nuts3"):
            assert isinstance(row[field], str), (row["code"], field, row[field])
        assert len(row["country"]) == 2 and row["country"].isupper()
        assert row["country"] not in ("EL", "UK"), "country must be ISO alpha-2 (GR, GB)"
        assert isinstance(row["sampled_by"], list)
        for entry in row["sampled_by"]:
            assert set(entry) == {"survey", "wave"}
            assert isinstance(entry["wave"], str)


def test_city_codes_and_names_unique(cities: dict[str, Any]) -> None:
    codes = [row["code"] for row in cities["rows"]]
    names = [row["name"] for row in cities["rows"]]
    assert len(codes) == len(set(codes))
    assert len(names) == len(set(names))


def test_urban_audit_codes_carry_the_eurostat_country_prefix(cities: dict[str, Any]) -> None:
    for row in cities["rows"]:
        assert row["code"].startswith(nuts_prefix(row["country"])), row["code"]


@pytest.mark.parametrize("name", sorted(EXPECTED_SAMPLED_BY))
def test_city_sampled_by(rows_by_name: dict[str, dict[str, Any]], name: str) -> None:
    assert name in rows_by_name
    assert sampled(rows_by_name[name]) == EXPECTED_SAMPLED_BY[name]


@pytest.mark.parametrize("wave,count", [(ICS, 15), (TIES, 15), (LMD, 11)])
def test_each_city_survey_has_exactly_its_cities(
    cities: dict[str, Any], wave: tuple[str, str], count: int
) -> None:
    claimed = {row["name"] for row in cities["rows"] if wave in sampled(row)}
    expected = {name for name, waves in EXPECTED_SAMPLED_BY.items() if wave in waves}
    assert claimed == expected
    assert len(claimed) == count


def test_nuts_codes_nest_and_match_country(cities: dict[str, Any]) -> None:
    for row in cities["rows"]:
        prefix = nuts_prefix(row["country"])
        assert len(row["nuts2"]) == 4, row["code"]
        assert len(row["nuts3"]) == 5, row["code"]
        assert row["nuts2"].startswith(prefix), row["code"]
        assert row["nuts3"].startswith(row["nuts2"]), row["code"]


def test_region_proxies(cities: dict[str, Any], rows_by_name: dict[str, dict[str, Any]]) -> None:
    for row in cities["rows"]:
        proxy = row.get("region_proxy")
        if proxy is None:
            continue
        assert set(proxy) == {"nuts"}
        code = proxy["nuts"]
        assert isinstance(code, str) and 3 <= len(code) <= 5
        assert code.startswith(nuts_prefix(row["country"]))
        # the proxy must be the city's own region at some level
        assert row["nuts3"].startswith(code), (row["name"], code)
    for name, code in EXPECTED_PROXIES.items():
        assert rows_by_name[name]["region_proxy"] == {"nuts": code}
    assert "region_proxy" not in rows_by_name["Milano"]
    assert "region_proxy" not in rows_by_name["Lisboa"]


def test_known_nuts_2016_codes(rows_by_name: dict[str, dict[str, Any]]) -> None:
    assert rows_by_name["Budapest"]["nuts3"] == "HU110"
    assert rows_by_name["Amsterdam"]["nuts3"] == "NL329"
    assert rows_by_name["Rotterdam"]["nuts3"] == "NL33C"
    assert rows_by_name["Lyon"]["nuts3"] == "FRK26"
    assert rows_by_name["Oslo"]["nuts3"] == "NO011"
    assert rows_by_name["Setúbal"]["nuts3"] == "PT170"
    assert rows_by_name["London"]["country"] == "GB"


# --- codebooks ---------------------------------------------------------------------------


@pytest.fixture(scope="module", params=sorted(CODEBOOKS))
def codebook(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    return request.param, load(CODEBOOKS[request.param])


def test_codebook_top_level(codebook: tuple[str, dict[str, Any]]) -> None:
    survey, book = codebook
    assert set(book) <= CODEBOOK_KEYS, set(book) - CODEBOOK_KEYS
    assert CODEBOOK_REQUIRED <= set(book)
    assert book["survey"] == survey
    assert book["wave"] == WAVES[survey]
    assert book["format"] in {"sav", "zsav", "por", "dta"}
    assert book["names"] in {"seen", "modelled"}
    assert isinstance(book["notes"], str) and book["notes"].strip()
    assert 40 <= len(book["variables"]) <= 70


@pytest.mark.parametrize("survey", ["ics", "ties", "localmultidem"])
def test_names_are_declared_modelled(survey: str) -> None:
    assert load(CODEBOOKS[survey])["names"] == "modelled"


def test_variable_names_unique(codebook: tuple[str, dict[str, Any]]) -> None:
    _, book = codebook
    names = [var["name"] for var in book["variables"]]
    assert len(names) == len(set(names))
    assert len({name.lower() for name in names}) == len(names), "SPSS names are case-insensitive"


def test_variable_keys_and_types(codebook: tuple[str, dict[str, Any]]) -> None:
    _, book = codebook
    for var in book["variables"]:
        name = var["name"]
        assert set(var) <= VARIABLE_KEYS, (name, set(var) - VARIABLE_KEYS)
        assert VARIABLE_REQUIRED <= set(var), (name, VARIABLE_REQUIRED - set(var))
        assert isinstance(var["label"], str) and var["label"]
        assert var["type"] in {"numeric", "string"}
        assert var["evidence"] in {"seen", "recalled", "modelled"}
        if "measure" in var:
            assert var["measure"] in {"nominal", "ordinal", "scale"}
        if var["type"] == "string":
            assert isinstance(var["width"], int) and var["width"] > 0, name
        else:
            assert "width" not in var, name


def test_value_label_keys_typed(codebook: tuple[str, dict[str, Any]]) -> None:
    _, book = codebook
    for var in book["variables"]:
        labels = var.get("labels")
        if labels is None:
            continue
        assert isinstance(labels, dict) and labels, var["name"]
        for key, text in labels.items():
            if var["type"] == "numeric":
                assert isinstance(key, (int, float)) and not isinstance(key, bool), (var["name"], key)
            else:
                assert isinstance(key, str), (var["name"], key)
                assert len(key.encode("utf-8")) <= var["width"], (var["name"], key)
            assert isinstance(text, str) and text, (var["name"], key)


def test_missing_declarations(codebook: tuple[str, dict[str, Any]]) -> None:
    _, book = codebook
    for var in book["variables"]:
        missing = var.get("missing")
        if missing is None:
            continue
        name = var["name"]
        assert set(missing) <= {"values", "range"} and missing, name
        if "values" in missing:
            values = missing["values"]
            assert isinstance(values, list) and 1 <= len(values) <= 3, name
            if "range" in missing:
                assert len(values) == 1, "SPSS allows a range plus one discrete value"
            for value in values:
                if var["type"] == "numeric":
                    assert isinstance(value, (int, float)) and not isinstance(value, bool), name
                else:
                    assert isinstance(value, str), name
            labels = var.get("labels", {})
            assert all(value in labels for value in values), (name, "unlabelled missing code")
        if "range" in missing:
            assert var["type"] == "numeric", name
            low, high = missing["range"]
            assert isinstance(low, (int, float)) and isinstance(high, (int, float))
            assert low <= high, name


def test_localmultidem_city_codes() -> None:
    book = load(CODEBOOKS["localmultidem"])
    by_name = {var["name"]: var for var in book["variables"]}
    city = by_name["city"]
    assert city["type"] == "string"
    assert set(city["labels"]) == {
        "Bar", "Bud", "Gen", "LON", "Lyo", "Mad", "Mil", "Osl", "Sto", "Zur", "Tur"
    }
    group = by_name["group"]
    assert set(group["labels"]) == set(range(1, 28))
    assert group["labels"][1] == "French"
    assert group["labels"][27] == "Chilean"
    assert set(by_name["qtype"]["labels"]) == {1, 2}
    seen = {var["name"] for var in book["variables"] if var["evidence"] == "seen"}
    assert {"id", "city", "group", "qtype", "q1", "q2", "q3", "q4", "q5", "q7001", "q801", "q9",
            "q11", "q12", "q15", "q27", "q34", "q53", "q54", "q55", "q57", "q71"} == seen


@pytest.mark.parametrize("survey", ["ics", "ties"])
def test_city_survey_codebooks_cover_fifteen_cities(survey: str) -> None:
    book = load(CODEBOOKS[survey])
    city = next(var for var in book["variables"] if var["name"] == "city")
    assert city["type"] == "string" and len(city["labels"]) == 15
    assert all(var["evidence"] == "modelled" for var in book["variables"])


def test_ties_missing_codes_are_the_negative_triplet() -> None:
    book = load(CODEBOOKS["ties"])
    declared = [var["missing"] for var in book["variables"] if "missing" in var]
    assert declared and all(m == {"values": [-9, -8, -7]} for m in declared)
