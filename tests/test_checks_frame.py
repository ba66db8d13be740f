"""checks.frame: pandera's verdict on a profile of distinct (value, reason) pairs, and the verdicts it keeps per
variable (a variable whose pairs it has judged before is not validated again: the verdict must be the same)."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import ROOT
from hypothesis import given, settings
from hypothesis import strategies as st

from harmonise.checks import frame
from harmonise.spec.project import Project, load_project

# (target, v_text, v_num, v_bool, reason): good pairs and the failures pandera must find
PAIRS = {
    "sex": [("male", None, None, None), ("female", None, None, None), (None, None, None, "refused"),
            ("zzz", None, None, None), ("male", None, None, "refused"), (None, None, None, "bogus")],
    "age": [(None, 34.0, None, None), (None, 121.0, None, None), (None, 40.5, None, None), (None, None, None, None)],
    "citizen": [(None, None, True, None), (None, None, False, None), (None, None, None, "not_asked")],
    "urbanisation": [(None, None, None, "not_asked")],
    "respondent_id": [("FR-1", None, None, None), ("FR-2", None, None, None)],
}


@pytest.fixture(scope="module")
def project() -> Project:
    return load_project(ROOT)


def _profile(pairs: dict[str, list[tuple[object, object, object, object]]]) -> pd.DataFrame:
    rows = [(t, text, num, flag, why, 1 + i, 10 * j + i) for j, (t, ps) in enumerate(pairs.items())
            for i, (text, num, flag, why) in enumerate(ps)]
    out = pd.DataFrame(rows, columns=["target", "v_text", "v_num", "v_bool", "reason", "n", "first_row"])
    return out.astype({"v_text": "object", "v_num": "float64", "v_bool": "object", "reason": "object"})


def _verdict(profile: pd.DataFrame, project: Project, *, cold: bool) -> list[tuple[object, ...]]:
    if cold:
        frame._COLUMNS.clear()
    assert project.schema is not None
    fc = frame.validate_profile(profile, project.schema, project.tables)
    return sorted(tuple(str(v) for v in r) for r in fc.itertuples(index=False))


def test_the_failures_of_a_profile_name_each_bad_pair_with_its_row_and_count(project: Project) -> None:
    """Exactly the bad pairs, each on its own variable's columns: a variable's "exactly one of value and missing
    reason" failure is not also reported on every other column (pandera lists a failing row's every column)."""
    reasons = "'not_asked', 'not_applicable', 'refused', 'dont_know', 'no_answer', 'not_available', 'invalid', " \
              "'other_missing', '__unmapped__'"
    assert _verdict(_profile(PAIRS), project, cold=True) == [
        ("age", "age: exactly one of value and missing reason", "<NA>", "13", "4"),  # neither value nor reason
        ("age", "in_range(0.0, 120.0)", "121.0", "11", "2"),
        ("age", "whole number", "40.5", "12", "3"),
        ("age_missing", "age: exactly one of value and missing reason", "<NA>", "13", "4"),
        ("sex", "isin(['male', 'female', 'other'])", "zzz", "3", "4"),
        ("sex", "sex: exactly one of value and missing reason", "male", "4", "5"),  # both value and reason
        ("sex_missing", f"isin([{reasons}])", "bogus", "5", "6"),
        ("sex_missing", "sex: exactly one of value and missing reason", "refused", "4", "5")]


def test_kept_verdicts_are_the_verdicts(project: Project) -> None:
    profile = _profile(PAIRS)
    cold = _verdict(profile, project, cold=True)
    assert _verdict(profile, project, cold=False) == cold  # every variable from the kept verdicts
    edited = {**PAIRS, "sex": PAIRS["sex"][:3], "age": [*PAIRS["age"], (None, -1.0, None, None)]}
    assert _verdict(_profile(edited), project, cold=False) == _verdict(_profile(edited), project, cold=True)


VALUES = st.sampled_from(["male", "female", "other", "zzz", None])
REASONS = st.sampled_from([None, "refused", "not_asked", "bogus"])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(VALUES, REASONS), min_size=1, max_size=6, unique=True),
       st.lists(st.tuples(st.sampled_from([None, 0.0, 34.0, 40.5, 121.0]), REASONS), min_size=1, max_size=5,
                unique=True))
def test_any_profile_gets_the_same_verdict_cold_and_from_kept_verdicts(
        sex: list[tuple[str | None, str | None]], age: list[tuple[float | None, str | None]]) -> None:
    project = load_project(ROOT)
    pairs = {"sex": [(v, None, None, r) for v, r in sex], "age": [(None, v, None, r) for v, r in age],
             "citizen": PAIRS["citizen"]}
    profile = _profile(pairs)
    warm = _verdict(profile, project, cold=False)  # whatever earlier examples left kept
    assert warm == _verdict(profile, project, cold=True)


def test_a_frame_of_rows_names_each_exactly_one_failure_on_its_own_variable(project: Project) -> None:
    assert project.schema is not None
    rows = pd.DataFrame({"sex": ["male", "zzz", "female"], "sex_missing": ["refused", None, None],
                         "age": [30.0, None, 40.0], "age_missing": [None, None, None]})
    fc = frame.validate_frame(rows, project.schema, project.tables)
    exactly = fc[fc["check"].str.endswith(frame.XOR)]
    assert sorted(zip(exactly["column"], exactly["check"], exactly["index"])) == [
        ("age", "age" + frame.XOR, 1), ("age_missing", "age" + frame.XOR, 1),
        ("sex", "sex" + frame.XOR, 0), ("sex_missing", "sex" + frame.XOR, 0)]
