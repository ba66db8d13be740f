"""Label comparisons scaffold settles rules by: names of countries and languages, code labels, label words."""

from __future__ import annotations

import pytest

from harmonise.authoring.similarity import label_precision, label_recall, map_conflicts, name_key, table_conflicts
from harmonise.spec.project import load_project
from harmonise.spec.source import VarMeta
from tests.conftest import ROOT

ROWS = {"EE": {"code": "EE", "name": "Estonia"}, "GB": {"code": "GB", "name": "United Kingdom", "aliases": ["Great Britain"]},
        "KR": {"code": "KR", "name": "Korea, Republic of"}, "ZZ": {"code": "ZZ", "name": "Other or unspecified country"},
        "NL": {"code": "DUT", "name": "Dutch; Flemish"}}


@pytest.mark.parametrize("label,target,agrees", [
    ("United Kingdom", "GB", True), ("GREAT BRITAIN", "GB", True), ("United Kingdom", "EE", False),
    ("Republic of Korea", "KR", True), ("Other EU country", "ZZ", True), ("Estonia", "ZZ", False),
    ("Flemish", "NL", True), ("Dutch", "NL", True), ("Frisian", "NL", False),
])
def test_table_labels_agree_with_the_target_names_and_aliases(label: str, target: str, agrees: bool) -> None:
    conflicts = table_conflicts({1: label}, {1: target}, ROWS)
    assert conflicts == ([] if agrees else [(1, label, target, ROWS[target]["name"])])


def test_codes_without_a_row_or_label_are_not_compared() -> None:
    assert table_conflicts({1: "Atlantis", 2: "Estonia"}, {1: "XQ", 3: "EE"}, ROWS) == []
    assert name_key("Korea, Republic of") == name_key("republic of KOREA")


def test_a_map_conflicts_only_with_a_label_naming_another_code() -> None:
    schema = load_project(ROOT).schema
    assert schema is not None
    sex, urban = schema.variable("sex"), schema.variable("urbanisation")
    assert map_conflicts(sex, {1: "male", 2: "female"}, {1: "Female", 2: "Male"}) == [
        (1, "Female", "male", "female"), (2, "Male", "female", "male")]
    assert map_conflicts(sex, {1: "male", 2: "female"}, {1: "Man", 2: "Woman"}) == []
    # 'Suburbs or outskirts of big city' shares a word with town_suburb's label: a judgement, not a conflict
    assert map_conflicts(urban, {2: "town_suburb"}, {2: "Suburbs or outskirts of big city"}) == []


def test_label_words_agree_both_ways() -> None:
    schema = load_project(ROOT).schema
    assert schema is not None
    trust = schema.variable("trust_parliament")
    assert label_recall(trust, VarMeta("trstprl", "Trust in country's parliament")) >= 0.5
    assert label_precision(trust, VarMeta("trstplc", "Trust in the police")) < 1.0
    sex = schema.variable("sex")
    assert (label_recall(sex, VarMeta("v225", "sex of respondent (Q63)")),
            label_precision(sex, VarMeta("v225", "sex of respondent (Q63)"))) == (1.0, 1.0)
