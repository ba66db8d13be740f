"""The SQL ratio estimator against a direct NumPy implementation (stratified, clustered designs)."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harmonise.errors import UsageError
from harmonise.reports.estimate import Z95, Rule, estimate_sql

BASE = 'SELECT c, "group", is_native, w, y, answered, stratum_id, psu_id, has_design FROM sample WHERE in_pop'
DESIGN = "SELECT stratum_id, count(DISTINCT psu_id) AS n_h FROM sample GROUP BY stratum_id"
NO_RULE = Rule(min_n=0, min_n_eff=0, suppress_nonresponse=1, flag_n=0, flag_cv=1e9, flag_rel_ci=1e9,
               flag_nonresponse=1)


def make_sample(seed: int, strata: int, clustered: bool) -> pd.DataFrame:
    """Rows of a stratified (clustered) sample; some out of the population, some unanswered."""
    rng = np.random.default_rng(seed)
    rows = []
    for h in range(strata):
        n_psu = 1 if (clustered and h == 0) else int(rng.integers(2, 6))
        for p in range(n_psu):
            for i in range(int(rng.integers(3, 15))):
                rid = f"{h}-{p}-{i}"
                rows.append({
                    "stratum_id": f"s{h}", "psu_id": f"p{h}-{p}" if clustered else rid, "has_design": clustered,
                    "c": str(rng.choice(["a", "b"])), "group": str(rng.choice(["nat", "g1", "g2"], p=[.5, .3, .2])),
                    "w": float(rng.uniform(0.2, 3.0)), "y": float(rng.random() < 0.6),
                    "answered": bool(rng.random() < 0.9), "in_pop": bool(rng.random() < 0.85)})
    frame = pd.DataFrame(rows)
    frame["is_native"] = frame["group"] == "nat"
    frame.loc[~frame["answered"], "y"] = np.nan
    return frame


def design_variance(z: np.ndarray, frame: pd.DataFrame) -> float:
    """V = Σ_h n_h/(n_h−1) Σ_p (z_hp − z̄_h)² over every PSU of the sample (single-PSU strata skipped)."""
    zhp = pd.Series(z).groupby([frame["stratum_id"].to_numpy(), frame["psu_id"].to_numpy()]).sum()
    by_stratum = zhp.groupby(level=0)
    n_h, mean_h = by_stratum.transform("size"), by_stratum.transform("mean")
    several = n_h > 1
    return float((n_h[several] / (n_h[several] - 1) * (zhp[several] - mean_h[several]) ** 2).sum())


def reference(frame: pd.DataFrame) -> dict[tuple[str, str], dict[str, float]]:
    """Direct computation: the ratio estimator, its linearised SE and the gap to the native group."""
    out: dict[tuple[str, str], dict[str, float]] = {}
    z_of: dict[tuple[str, str], np.ndarray] = {}
    for (c, g), _ in frame[frame["in_pop"]].groupby(["c", "group"]):
        dom = (frame["in_pop"] & frame["answered"] & (frame["c"] == c) & (frame["group"] == g)).to_numpy()
        w, y = frame["w"].to_numpy(), np.nan_to_num(frame["y"].to_numpy())
        if not dom.any():
            out[(c, g)] = {"n": 0}
            continue
        r = (w * y)[dom].sum() / w[dom].sum()
        z = np.where(dom, w * (y - r) / w[dom].sum(), 0.0)
        z_of[(c, g)] = z
        out[(c, g)] = {"estimate": r, "se": np.sqrt(design_variance(z, frame)), "n": int(dom.sum()),
                       "n_eff": w[dom].sum() ** 2 / (w[dom] ** 2).sum()}
    for (c, g), cell in out.items():
        if g != "nat" and cell["n"] and out.get((c, "nat"), {}).get("n"):
            cell["gap"] = cell["estimate"] - out[(c, "nat")]["estimate"]
            cell["gap_se"] = np.sqrt(design_variance(z_of[(c, g)] - z_of[(c, "nat")], frame))
    return out


def run_sql(frame: pd.DataFrame, rule: Rule = NO_RULE) -> pd.DataFrame:
    con = duckdb.connect(":memory:")
    con.register("sample", frame)
    try:
        return con.execute(estimate_sql(BASE, DESIGN, ["c"], rule)).df()
    finally:
        con.close()


def check_against_reference(frame: pd.DataFrame) -> None:
    got = run_sql(frame)
    ref = reference(frame)
    assert len(got) == len(ref)
    for row in got.itertuples():
        exp = ref[(row.c, row.group)]
        assert row.n == exp["n"]
        if exp["n"] == 0:  # every outcome missing: no estimate at all
            assert row.reliability == "suppressed" and pd.isna(row.estimate) and pd.isna(row.se)
            continue
        assert row.estimate == pytest.approx(exp["estimate"], rel=1e-9, abs=1e-12)
        assert row.se == pytest.approx(exp["se"], rel=1e-9, abs=1e-12)
        assert row.n_eff == pytest.approx(exp["n_eff"], rel=1e-9)
        assert row.ci_low == pytest.approx(exp["estimate"] - Z95 * exp["se"], rel=1e-9, abs=1e-12)
        if "gap" in exp:
            assert row.gap == pytest.approx(exp["gap"], rel=1e-9, abs=1e-12)
            assert row.gap_se == pytest.approx(exp["gap_se"], rel=1e-9, abs=1e-12)
        else:
            assert pd.isna(row.gap) and pd.isna(row.gap_se)


def test_stratified_clustered_design_matches_numpy() -> None:
    frame = make_sample(7, strata=4, clustered=True)
    check_against_reference(frame)
    got = run_sql(frame)
    assert set(got["design"]) == {"stratum/psu"}
    # the covariance term matters: the gap SE differs from the independence approximation
    g1 = got[(got.c == "a") & (got.group == "g1")].iloc[0]
    nat = got[(got.c == "a") & (got.group == "nat")].iloc[0]
    assert abs(g1.gap_se - np.hypot(g1.se, nat.se)) > 1e-6


def test_respondents_as_psus_matches_numpy() -> None:
    frame = make_sample(3, strata=2, clustered=False)
    check_against_reference(frame)
    assert set(run_sql(frame)["design"]) == {"respondents as PSUs"}


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), strata=st.integers(1, 4), clustered=st.booleans())
def test_random_designs_match_numpy(seed: int, strata: int, clustered: bool) -> None:
    check_against_reference(make_sample(seed, strata, clustered))


def test_default_rule_suppresses_and_flags() -> None:
    frame = make_sample(11, strata=3, clustered=True)
    got = run_sql(frame, Rule())
    ref = reference(frame)
    for row in got.itertuples():
        n, n_eff = ref[(row.c, row.group)]["n"], ref[(row.c, row.group)]["n_eff"]
        if n < 20 or n_eff < 30:
            assert row.reliability == "suppressed"
            assert pd.isna(row.estimate) and pd.isna(row.se) and pd.isna(row.ci_low) and pd.isna(row.gap)
        elif n < 50:
            assert row.reliability == "low" and "n<50" in row.flags
    assert "suppressed" in set(got["reliability"])
    assert Rule().describe() == ("suppress if n < 20 or n_eff < 30 or item_nonresponse > 0.5; low if n < 50 or "
                                 "cv > 0.3 or rel_ci_width > 1.3 or item_nonresponse > 0.2")


def test_item_nonresponse_share_suppresses() -> None:
    frame = make_sample(5, strata=2, clustered=False)
    frame["in_pop"] = True
    frame["answered"] = frame["c"] == "a"
    frame.loc[~frame["answered"], "y"] = np.nan
    got = run_sql(frame, Rule(min_n=0, min_n_eff=0))
    b = got[got.c == "b"]
    assert list(b["item_nonresponse"]) == [1.0] * len(b)
    assert set(b["reliability"]) == {"suppressed"} and b["estimate"].isna().all()


def test_rule_rejects_negative_and_non_finite_thresholds() -> None:
    with pytest.raises(UsageError, match="min_n must be a finite number >= 0"):
        Rule(min_n=-1)
    with pytest.raises(UsageError, match=r"min_n_eff must be a finite number >= 0 \(got nan\)"):
        Rule(min_n_eff=float("nan"))
    with pytest.raises(UsageError, match=r"flag_rel_ci must be a finite number >= 0 \(got inf\)"):
        Rule(flag_rel_ci=float("inf"))
