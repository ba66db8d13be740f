"""Survey descriptors (surveys/<id>/survey.yaml) and the declared source codebooks beside them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from harmonise.spec.codebook import SourceCodebook
from harmonise.spec.descriptor import SurveyDescriptor, load_descriptor
from tests.conftest import declared_waves, waves_of

SURVEYS = Path(__file__).resolve().parents[1] / "surveys"

# A descriptor declares exactly the waves of its survey's crosswalk, in the same order.
EXPECTED_WAVES = {s: waves_of(s) for s in sorted({s for s, _ in declared_waves()})}
SURVEY_IDS = sorted(EXPECTED_WAVES)

# Codebooks written with the descriptors; other surveys' codebooks are checked when present.
OWN_CODEBOOKS = [("evs", "2008"), ("evs", "2017"), ("eumidis", "I"), ("eumidis", "II")]

CODEBOOK_KEYS = {"survey", "wave", "file", "format", "encoding", "names", "rows", "notes", "variables"}
CODEBOOK_REQUIRED = {"survey", "wave", "file", "format", "names", "variables"}
VARIABLE_KEYS = {"name", "label", "type", "width", "format", "measure", "labels", "missing", "notes", "evidence"}
VARIABLE_REQUIRED = {"name", "label", "type", "evidence"}
MISSING_KEYS = {"values", "range", "extended"}


def descriptor_path(survey: str) -> Path:
    return SURVEYS / survey / "survey.yaml"


def read_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def all_waves() -> list[tuple[str, str]]:
    return [(s, w) for s in SURVEY_IDS for w in EXPECTED_WAVES[s]]


# --- descriptors -----------------------------------------------------------------


def test_exactly_the_six_surveys_have_descriptors() -> None:
    assert sorted(p.parent.name for p in SURVEYS.glob("*/survey.yaml")) == SURVEY_IDS


@pytest.mark.parametrize("survey", SURVEY_IDS)
def test_descriptor_validates_and_lists_the_expected_waves(survey: str) -> None:
    desc = load_descriptor(descriptor_path(survey))
    assert desc.id == survey
    assert [w.id for w in desc.waves] == EXPECTED_WAVES[survey]
    for wave in desc.waves:
        assert wave.codebook == f"codebook_{wave.id}.yaml"


def test_descriptor_name_status_per_survey() -> None:
    status = {s: load_descriptor(descriptor_path(s)).names for s in SURVEY_IDS}
    assert status == {"ess": "seen", "eumidis": "mixed", "evs": "seen", "ics": "modelled",
                      "localmultidem": "partly_seen", "ties": "modelled"}
    midis = load_descriptor(descriptor_path("eumidis"))
    assert [(w.id, w.names) for w in midis.waves] == [("I", "modelled"), ("II", "seen")]


def test_ess_weights_and_design_by_round() -> None:
    ess = load_descriptor(descriptor_path("ess"))
    for wave in ess.waves:
        r = int(wave.id)
        if r >= 9:
            assert wave.weights == ["dweight", "pspwght", "pweight", "anweight"]
            assert (wave.design.psu, wave.design.stratum) == ("psu", "stratum")
        else:
            assert wave.weights == ["dweight", "pspwght", "pweight"]
            assert (wave.design.psu, wave.design.stratum) == (None, None)
    assert ess.wave("8").files[0].name == "ESS8e02_1.sav"
    assert ess.wave("8").doi == "10.21338/NSD-ESS8-2016"


def test_population_definitions() -> None:
    got = {s: load_descriptor(descriptor_path(s)).target_population.definition for s in SURVEY_IDS}
    assert got == {"ess": "general_population", "eumidis": "selected_groups", "evs": "general_population",
                   "ics": "first_generation", "localmultidem": "selected_groups", "ties": "second_generation"}


def test_misspelt_top_level_key_is_rejected() -> None:
    data = read_yaml(descriptor_path("ess"))
    data["acronmy"] = data.pop("acronym")
    with pytest.raises(ValidationError) as info:
        SurveyDescriptor.model_validate(data)
    got = sorted((e["type"], e["loc"]) for e in info.value.errors())
    assert got == [("extra_forbidden", ("acronmy",)), ("missing", ("acronym",))]


def test_misspelt_nested_key_is_rejected() -> None:
    data = read_yaml(descriptor_path("evs"))
    data["waves"][1]["fieldwork"]["strat"] = data["waves"][1]["fieldwork"].pop("start")
    with pytest.raises(ValidationError) as info:
        SurveyDescriptor.model_validate(data)
    got = sorted((e["type"], e["loc"]) for e in info.value.errors())
    assert got == [("extra_forbidden", ("waves", 1, "fieldwork", "strat")),
                   ("missing", ("waves", 1, "fieldwork", "start"))]


def test_load_descriptor_rejects_misspelt_key_in_a_file(tmp_path: Path) -> None:
    text = descriptor_path("ties").read_text(encoding="utf-8").replace("\nscope:", "\nscpoe:", 1)
    bad = tmp_path / "survey.yaml"
    bad.write_text(text, encoding="utf-8")
    with pytest.raises(ValidationError) as info:
        load_descriptor(bad)
    assert ("extra_forbidden", ("scpoe",)) in [(e["type"], e["loc"]) for e in info.value.errors()]


def test_wave_countries_must_be_survey_countries() -> None:
    data = read_yaml(descriptor_path("ics"))
    data["waves"][0]["countries"].append("SE")
    with pytest.raises(ValidationError, match=r"wave '2012' lists countries not in the survey's countries: \['SE'\]"):
        SurveyDescriptor.model_validate(data)


def test_codebook_path_must_follow_wave_id() -> None:
    data = read_yaml(descriptor_path("ties"))
    data["waves"][0]["codebook"] = "codebook_2008.yaml"
    with pytest.raises(ValidationError, match=r"wave '2007': codebook must be 'codebook_2007.yaml'"):
        SurveyDescriptor.model_validate(data)


def test_unquoted_norway_is_caught() -> None:
    """YAML 1.1 reads a bare NO as false: the model must not accept it as a country."""
    data = read_yaml(descriptor_path("localmultidem"))
    data["countries"] = yaml.safe_load("[CH, ES, NO]")
    assert data["countries"] == ["CH", "ES", False]
    with pytest.raises(ValidationError):
        SurveyDescriptor.model_validate(data)


@pytest.mark.parametrize(("survey", "wave"), all_waves())
def test_each_wave_codebook_file_exists(survey: str, wave: str) -> None:
    desc = load_descriptor(descriptor_path(survey))
    path = SURVEYS / survey / desc.wave(wave).codebook
    assert path.is_file(), f"{survey} wave {wave}: declared codebook {path.name} is missing"


@pytest.mark.parametrize(("survey", "wave"), all_waves())
def test_existing_codebook_matches_its_wave(survey: str, wave: str) -> None:
    desc = load_descriptor(descriptor_path(survey))
    w = desc.wave(wave)
    path = SURVEYS / survey / w.codebook
    if not path.is_file():
        pytest.skip(f"{path.name} not written yet")
    book = read_yaml(path)
    assert (book["survey"], book["wave"]) == (survey, wave)
    assert book["file"] in [f.name for f in w.files]
    if w.names != "partly_seen":
        assert book["names"] == w.names


# --- the declared codebooks written here ------------------------------------------


YAML11_BOOLS = {"yes", "no", "on", "off", "y", "n", "true", "false"}


def yaml_traps(path: Path, allow_bools: bool) -> list[str]:
    """Anchors, aliases and unquoted YAML 1.1 boolean words (NO, Yes, off...) in a file."""
    found = []
    with path.open(encoding="utf-8") as fh:
        for event in yaml.parse(fh, Loader=yaml.SafeLoader):
            line = event.start_mark.line + 1
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                found.append(f"line {line}: anchor or alias")
            if isinstance(event, yaml.ScalarEvent) and event.style is None:
                word = event.value.lower()
                if word in YAML11_BOOLS and not (allow_bools and word in {"true", "false"}):
                    found.append(f"line {line}: unquoted {event.value!r}")
    return found


@pytest.mark.parametrize("survey", SURVEY_IDS)
def test_descriptor_has_no_yaml_traps(survey: str) -> None:
    assert yaml_traps(descriptor_path(survey), allow_bools=True) == []


@pytest.mark.parametrize(("survey", "wave"), OWN_CODEBOOKS)
def test_codebook_has_no_yaml_traps(survey: str, wave: str) -> None:
    assert yaml_traps(SURVEYS / survey / f"codebook_{wave}.yaml", allow_bools=False) == []


def test_trap_check_catches_bare_no(tmp_path: Path) -> None:
    bad = tmp_path / "x.yaml"
    bad.write_text('a: [CH, NO]\nb: &x 1\nc: *x\nd: "NO"\n', encoding="utf-8")
    assert yaml_traps(bad, allow_bools=True) == [
        "line 1: unquoted 'NO'", "line 2: anchor or alias", "line 3: anchor or alias"]


@pytest.mark.parametrize(("survey", "wave"), OWN_CODEBOOKS)
def test_codebook_structure(survey: str, wave: str) -> None:
    book = read_yaml(SURVEYS / survey / f"codebook_{wave}.yaml")
    assert set(book) <= CODEBOOK_KEYS
    assert CODEBOOK_REQUIRED <= set(book)
    assert (book["survey"], book["wave"]) == (survey, wave)
    assert book["format"] in {"sav", "zsav", "por", "dta"}
    assert book["names"] in {"seen", "modelled"}
    names = [v["name"] for v in book["variables"]]
    assert len(names) == len(set(names)), "duplicate variable names"
    for var in book["variables"]:
        where = f"{survey} {wave} {var.get('name')}"
        assert set(var) <= VARIABLE_KEYS, where
        assert VARIABLE_REQUIRED <= set(var), where
        assert isinstance(var["name"], str) and isinstance(var["label"], str), where
        assert var["type"] in {"numeric", "string"}, where
        assert var["evidence"] in {"seen", "recalled", "modelled"}, where
        assert var.get("measure", "nominal") in {"nominal", "ordinal", "scale"}, where
        if var["type"] == "string":
            assert isinstance(var["width"], int) and var["width"] > 0, where
        else:
            assert "width" not in var, where
        key_type = int if var["type"] == "numeric" else str
        for code, text in var.get("labels", {}).items():
            assert type(code) is key_type, f"{where}: label key {code!r} should be {key_type.__name__}"
            assert isinstance(text, str), f"{where}: label of {code!r} is {text!r}, not a string"
        _check_missing(var, book["format"], where)


@pytest.mark.parametrize(("survey", "wave"), OWN_CODEBOOKS)
def test_codebook_passes_the_strict_loader(survey: str, wave: str) -> None:
    book = SourceCodebook.model_validate(read_yaml(SURVEYS / survey / f"codebook_{wave}.yaml"))
    assert (book.survey, book.wave) == (survey, wave)


def _check_missing(var: dict[str, Any], fmt: str, where: str) -> None:
    missing = var.get("missing")
    if missing is None:
        return
    assert set(missing) <= MISSING_KEYS and missing, where
    values = missing.get("values", [])
    if "range" in missing:
        low, high = missing["range"]
        assert var["type"] == "numeric" and low <= high, where
        assert len(values) <= 1, f"{where}: a range takes at most one discrete value"
    assert len(values) <= 3, f"{where}: SPSS allows at most 3 discrete missing values"
    key_type = int if var["type"] == "numeric" else str
    assert all(type(v) is key_type for v in values), where
    if "extended" in missing:
        assert fmt == "dta", f"{where}: extended missing values exist only in Stata files"


def test_codebook_variable_counts() -> None:
    counts = {(s, w): len(read_yaml(SURVEYS / s / f"codebook_{w}.yaml")["variables"]) for s, w in OWN_CODEBOOKS}
    assert counts == {("evs", "2008"): 38, ("evs", "2017"): 53, ("eumidis", "I"): 47, ("eumidis", "II"): 46}


def test_codebook_key_facts() -> None:
    """Spot checks against the facts recorded in the survey notes."""
    evs17 = {v["name"]: v for v in read_yaml(SURVEYS / "evs" / "codebook_2017.yaml")["variables"]}
    assert evs17["country"]["labels"][276] == "Germany"
    assert evs17["c_abrv"]["type"] == "string"
    assert evs17["v225"]["labels"] == {1: "male", 2: "female", -1: "don't know", -2: "no answer",
                                       -4: "item not included"}
    assert not [n for n, v in evs17.items() if "missing" in v]  # EVS negatives are not declared
    mid2 = {v["name"]: v for v in read_yaml(SURVEYS / "eumidis" / "codebook_II.yaml")["variables"]}
    assert mid2["country"]["labels"][1] == "Austria" and mid2["country"]["labels"][28] == "United Kingdom"
    assert mid2["country2"]["labels"][9] == "EL"
    assert mid2["tgroup"]["labels"] == {1: "ASIA", 2: "TUR", 3: "NOAFR", 4: "RIMGR", 5: "ROMA", 6: "RUSMIN",
                                        7: "SASIA", 8: "SSAFR"}
    assert {k: mid2["IN05"]["labels"][k] for k in (143, 207, 229, 233)} == {
        143: "Morocco", 207: "Turkey", 229: "Stateless", 233: "Kosovo"}
    assert {k: mid2["PB15_1"]["labels"][k] for k in (96, 97, 98, 99)} == {
        96: "Refused", 97: "Does not understand the question", 98: "Not applicable", 99: "Don't know"}
    assert mid2["HH06"]["labels"][9999] == "Don't know"
    mid1 = read_yaml(SURVEYS / "eumidis" / "codebook_I.yaml")
    assert mid1["names"] == "modelled"
    assert {v["evidence"] for v in mid1["variables"]} == {"modelled"}


def test_evs_2008_codebook_follows_the_real_file_names() -> None:
    """ZA4800 names seen in public scripts reading the file (surveys/evs/codebook_2008.yaml notes)."""
    evs08 = {v["name"]: v for v in read_yaml(SURVEYS / "evs" / "codebook_2008.yaml")["variables"]}
    # the country-code variables end in 'b'; there is no v305, v307, v310 or v312
    assert {"v305b", "v307b", "v310b", "v312b"} <= set(evs08)
    assert not {"v305", "v307", "v310", "v312", "v254", "v255", "v269", "v270"} & set(evs08)
    assert (evs08["v306"]["label"], evs08["v304"]["label"]) == (
        "respondent born in [country]", "respondent has [country] citizenship")
    # v8 is happiness (4 points), v256 national pride: neither is health nor closeness
    assert evs08["v8"]["labels"][1] == "very happy" and 5 not in evs08["v8"]["labels"]
    assert evs08["v256"]["label"] == "how proud are you to be [nationality]"
    # the regions are numeric EVS codes, not NUTS strings
    assert {evs08[f"v371b_N{i}"]["type"] for i in (1, 2, 3)} == {"numeric"}
    assert all(v.get("notes") for n, v in evs08.items() if v["evidence"] == "seen" and n not in {"country"})


def test_evs_descriptor_and_2017_codebook_carry_the_checked_facts() -> None:
    """ZA7500 v5.0.0: DOI and size as a public script downloading it gives them; every declared 2017 name is in
    the file's full variable list (surveys/evs/codebook_2017.yaml notes name the sources)."""
    desc = read_yaml(SURVEYS / "evs" / "survey.yaml")
    waves = {w["id"]: w for w in desc["waves"]}
    assert (waves["2017"]["doi"], waves["2017"]["sample_size"]["respondents"]) == ("10.4232/1.13897", 59438)
    assert waves["2017"]["sample_size"]["approximate"] is False and "unverified" not in waves["2017"]
    assert waves["2008"]["doi"] == "10.4232/1.12458" and "unverified" not in waves["2008"]
    assert {f["name"]: f["evidence"] for f in waves["2008"]["files"]}["ZA4800_v5-0-0.sav"] == "seen"
    assert "unverified" not in {w["name"]: w for w in desc["weights"]}["weight_g"]
    evs17 = {v["name"]: v for v in read_yaml(SURVEYS / "evs" / "codebook_2017.yaml")["variables"]}
    assert all("43133749530" in v["notes"] for v in evs17.values())
    assert evs17["v244"]["labels"][2] == "less then 30h a week"  # sic, as the file labels it
    assert (evs17["v228b"]["type"], evs17["v228b"]["evidence"], evs17["v228b_r"]["evidence"]) == (
        "string", "seen", "seen")
