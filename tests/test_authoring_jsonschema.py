"""The crosswalk JSON Schema: generated from the model, committed, referenced, and strict."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from harmonise.authoring.jsonschema import MODELINE, SCHEMA_PATH, crosswalk_json_schema, jsonable, render
from harmonise.spec.project import crosswalk_paths, load_schema
from harmonise.spec.yamlload import load_yaml_file
from tests.conftest import ROOT, run

CROSSWALKS = crosswalk_paths(ROOT)


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads((ROOT / SCHEMA_PATH).read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def crosswalk_data(path: Path) -> dict[str, Any]:
    loaded = load_yaml_file(path)
    assert not loaded.issues
    return jsonable(loaded.data)


def errors(validator: jsonschema.Draft202012Validator, data: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted((".".join(map(str, e.absolute_path)), e.message) for e in validator.iter_errors(data))


def test_committed_schema_is_the_generated_one() -> None:
    schema, _, _ = load_schema(ROOT)
    assert (ROOT / SCHEMA_PATH).read_text(encoding="utf-8") == render(crosswalk_json_schema(schema)), \
        "stale: run `harmonise schema --json-schema --out schemas/crosswalk.schema.json` and commit the file"
    code, out, _ = run("schema", "--json-schema", "--check")
    assert (code, out) == (0, "schemas/crosswalk.schema.json is up to date\n")
    code, out, _ = run("schema", "--json-schema")
    assert code == 0 and out == (ROOT / SCHEMA_PATH).read_text(encoding="utf-8")


def test_stale_or_missing_schema_fails_the_check(project: Path) -> None:
    code, _out, err = run("schema", "--json-schema", "--check", project=project)
    assert code == 1
    assert err.splitlines()[0] == ("error: schemas/crosswalk.schema.json: schemas/crosswalk.schema.json is missing or "
                                   "out of date — run `harmonise schema --json-schema --out "
                                   "schemas/crosswalk.schema.json`")


def test_check_and_out_together_are_a_usage_error(tmp_path: Path) -> None:
    """`schema --json-schema --check --out FILE` checked the committed file, said it was up to date and wrote
    nothing: --out was ignored without a word."""
    code, out, err = run("schema", "--json-schema", "--check", "--out", str(tmp_path / "s.json"))
    assert (code, out) == (2, "")
    assert err.endswith("Error: give --check (compare schemas/crosswalk.schema.json) or --out FILE (write it), not "
                        "both\n")
    assert list(tmp_path.iterdir()) == []


def test_six_crosswalks_reference_the_schema() -> None:
    assert sorted(p.stem for p in CROSSWALKS) == ["ess", "eumidis", "evs", "ics", "localmultidem", "ties"]
    for path in CROSSWALKS:
        assert path.read_text(encoding="utf-8").splitlines()[0] == MODELINE, path.name
    assert (ROOT / "mappings" / MODELINE.split("=", 1)[1]).resolve() == (ROOT / SCHEMA_PATH).resolve()


@pytest.mark.parametrize("path", CROSSWALKS, ids=lambda p: p.stem)
def test_every_shipped_crosswalk_is_valid(validator: jsonschema.Draft202012Validator, path: Path) -> None:
    assert errors(validator, crosswalk_data(path)) == []


def test_misspelt_keys_are_rejected(validator: jsonschema.Draft202012Validator) -> None:
    good = crosswalk_data(ROOT / "mappings" / "ess.yaml")
    bad = copy.deepcopy(good)
    bad["targets"]["sex"]["sorce"] = bad["targets"]["sex"].pop("source")
    assert errors(validator, bad) == [("targets.sex", "Additional properties are not allowed ('sorce' was unexpected)")]
    bad = copy.deepcopy(good)
    bad["titel"] = bad.pop("title")
    assert errors(validator, bad) == [("", "'title' is a required property"),
                                      ("", "Additional properties are not allowed ('titel' was unexpected)")]
    bad = copy.deepcopy(good)
    bad["waves"][7]["overides"] = bad["waves"][7].pop("overrides")
    assert errors(validator, bad) == [("waves.7", "Additional properties are not allowed ('overides' was unexpected)")]


def test_unknown_targets_and_bad_override_keys_are_rejected(validator: jsonschema.Draft202012Validator) -> None:
    bad = crosswalk_data(ROOT / "mappings" / "ess.yaml")
    bad["targets"]["gender"] = bad["targets"].pop("sex")
    bad["waves"][0]["overrides"]["citizenship"]["tabel"] = "x"
    assert errors(validator, bad) == [
        ("targets", "Additional properties are not allowed ('gender' was unexpected)"),
        ("waves.0.overrides.citizenship", ("{'source': 'ctzship', 'table': 'ess_country_codes', 'map': {'CS': 'CSHH', "
         "'SU': 'SUHH', 'YU': 'YUCS', 'TP': 'TPTL'}, 'quality': 'exact', 'tabel': 'x'} is not valid "
         "under any of the given schemas")),
    ]
