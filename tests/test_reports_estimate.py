"""The SQL ratio estimator against a direct NumPy implementation (stratified, clustered designs, lonely PSUs)."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import stats

from harmonise.errors import UsageError
from harmonise.reports.disclosure import publish
from harmonise.reports.estimate import LONELY_PSU, Rule, design_sql, estimate_sql, intervals

BASE = ('SELECT c, "group", is_native, \'s\' AS source, w, y, answered, stratum_id, psu_id, has_design FROM sample '
        'WHERE in_pop')
DESIGN_SOURCE = "SELECT stratum_id, psu_id, 'b' AS block, stratum_id AS stratum FROM sample"
NO_RULE = Rule(min_n=0, min_n_eff=0, suppress_nonresponse=1, flag_n=0, flag_cv=1e9, flag_rel_ci=1e9,
               flag_nonresponse=1, flag_df=0)


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


def variance_strata(frame: pd.DataFrame, lonely: str) -> pd.Series:
    """Each row's variance stratum: its stratum, or with ``collapse`` the next stratum (in name order) that has
    two or more PSUs, else the previous one."""
    n_h = frame.groupby("stratum_id")["psu_id"].nunique()
    if lonely != "collapse":
        return frame["stratum_id"]
    names = sorted(n_h.index)
    ok = [s for s in names if n_h[s] > 1]
    target = {}
    for i, s in enumerate(names):
        later = [o for o in ok if names.index(o) > i]
        earlier = [o for o in ok if names.index(o) < i]
        target[s] = s if n_h[s] > 1 else (later[0] if later else earlier[-1] if earlier else "collapsed")
    return frame["stratum_id"].map(target)


def design_variance(z: np.ndarray, frame: pd.DataFrame, lonely: str = "adjust",
                    domain: np.ndarray | None = None) -> float:
    """V = Σ_h n_h/(n_h−1) Σ_p (z_hp − z̄_h)² over every PSU of the sample; a stratum with one PSU adds
    (z_hp − c)², c = Σz / Σ n_h over the strata the domain touches (adjust), or nothing (certainty, remove)."""
    strata = variance_strata(frame, lonely).to_numpy()
    psu = (frame["stratum_id"] + "/" + frame["psu_id"]).to_numpy()
    zhp = pd.Series(z).groupby([strata, psu]).sum()
    n_h = pd.Series(psu).groupby(strata).nunique()
    touched = np.unique(strata[domain]) if domain is not None else np.unique(strata[z != 0])
    centre = z.sum() / n_h[touched].sum() if len(touched) else 0.0
    total = 0.0
    for h, part in zhp.groupby(level=0):
        if n_h[h] > 1:
            padded = np.concatenate([part.to_numpy(), np.zeros(n_h[h] - len(part))])
            total += n_h[h] / (n_h[h] - 1) * ((padded - padded.mean()) ** 2).sum()
        elif lonely in ("adjust", "collapse") and h in touched:
            total += float(((part.to_numpy() - centre) ** 2).sum())
    return total


def reference(frame: pd.DataFrame, lonely: str = "adjust") -> dict[tuple[str, str], dict[str, float]]:
    """Direct computation: the ratio estimator, its linearised SE and the gap to the native group."""
    out: dict[tuple[str, str], dict[str, float]] = {}
    z_of: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
    for (c, g), _ in frame[frame["in_pop"]].groupby(["c", "group"]):
        dom = (frame["in_pop"] & frame["answered"] & (frame["c"] == c) & (frame["group"] == g)).to_numpy()
        w, y = frame["w"].to_numpy(), np.nan_to_num(frame["y"].to_numpy())
        if not dom.any():
            out[(c, g)] = {"n": 0}
            continue
        r = (w * y)[dom].sum() / w[dom].sum()
        z = np.where(dom, w * (y - r) / w[dom].sum(), 0.0)
        z_of[(c, g)] = (z, dom)
        out[(c, g)] = {"estimate": r, "se": np.sqrt(design_variance(z, frame, lonely, dom)), "n": int(dom.sum()),
                       "n_eff": w[dom].sum() ** 2 / (w[dom] ** 2).sum()}
    for (c, g), cell in out.items():
        if g != "nat" and cell["n"] and out.get((c, "nat"), {}).get("n"):
            (zg, dg), (zn, dn) = z_of[(c, g)], z_of[(c, "nat")]
            cell["gap"] = cell["estimate"] - out[(c, "nat")]["estimate"]
            cell["gap_se"] = np.sqrt(design_variance(zg - zn, frame, lonely, dg | dn))
    return out


def run_sql(frame: pd.DataFrame, lonely: str = "adjust") -> pd.DataFrame:
    con = duckdb.connect(":memory:")
    con.register("sample", frame)
    try:
        return con.execute(estimate_sql(BASE, design_sql(DESIGN_SOURCE, lonely), ["c"], lonely)).df()
    finally:
        con.close()


def published(frame: pd.DataFrame, rule: Rule = NO_RULE, lonely: str = "adjust") -> pd.DataFrame:
    raw = run_sql(frame, lonely)
    raw["share"], raw["breakdown"] = True, "g"
    return publish(raw, [], ["c"], rule, lonely)


def check_against_reference(frame: pd.DataFrame, lonely: str = "adjust") -> None:
    got = published(frame, lonely=lonely)
    ref = reference(frame, lonely)
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
        assert row.design.endswith(f"; lonely PSUs: {lonely}")
        if "gap" in exp:
            assert row.gap == pytest.approx(exp["gap"], rel=1e-9, abs=1e-12)
            assert row.gap_se == pytest.approx(exp["gap_se"], rel=1e-9, abs=1e-12)
        else:
            assert pd.isna(row.gap) and pd.isna(row.gap_se)


@pytest.mark.parametrize("lonely", LONELY_PSU)
def test_stratified_clustered_design_matches_numpy(lonely: str) -> None:
    frame = make_sample(7, strata=4, clustered=True)  # stratum s0 has a single PSU
    check_against_reference(frame, lonely)
    got = published(frame, lonely=lonely)
    assert set(got["design"]) == {f"stratum/psu; lonely PSUs: {lonely}"}
    # the covariance term matters: the gap SE differs from the independence approximation
    g1 = got[(got.c == "a") & (got.group == "g1")].iloc[0]
    nat = got[(got.c == "a") & (got.group == "nat")].iloc[0]
    assert abs(g1.gap_se - np.hypot(g1.se, nat.se)) > 1e-6


def test_lonely_psu_methods_differ_where_a_stratum_has_one_psu() -> None:
    frame = make_sample(7, strata=4, clustered=True)
    se = {m: published(frame, lonely=m).set_index(["c", "group"])["se"] for m in LONELY_PSU}
    assert (se["certainty"] == se["remove"]).all()
    # the lonely stratum adds its PSU's squared score to every cell with respondents in it
    in_s0 = frame[(frame["stratum_id"] == "s0") & frame["in_pop"] & frame["answered"]].groupby(["c", "group"]).size()
    assert len(in_s0) and (se["adjust"][in_s0.index] > se["certainty"][in_s0.index]).all()
    assert (se["adjust"].drop(in_s0.index) == se["certainty"].drop(in_s0.index)).all()
    assert (se["collapse"] != se["adjust"]).any()
    lonely_only = frame[frame["stratum_id"] == "s0"].copy()  # every cell inside the one-PSU stratum
    got = published(lonely_only, lonely="certainty")
    assert set(got["se"]) == {0.0}
    assert all(r == "low" and "se=0" in f for r, f in zip(got["reliability"], got["flags"]))


def test_respondents_as_psus_matches_numpy() -> None:
    frame = make_sample(3, strata=2, clustered=False)
    check_against_reference(frame)
    assert set(published(frame)["design"]) == {"respondents as PSUs; lonely PSUs: adjust"}


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), strata=st.integers(1, 4), clustered=st.booleans(),
       lonely=st.sampled_from(LONELY_PSU))
def test_random_designs_match_numpy(seed: int, strata: int, clustered: bool, lonely: str) -> None:
    check_against_reference(make_sample(seed, strata, clustered), lonely)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), strata=st.integers(1, 5), clustered=st.booleans(),
       lonely=st.sampled_from(LONELY_PSU))
def test_a_margin_summed_per_stratum_equals_the_margin_of_the_respondents(seed: int, strata: int, clustered: bool,
                                                                       lonely: str) -> None:
    """Strata lying within c: the margin c = all that estimate_sql adds from its per-stratum sums gives the
    rows of the margin written into the base as respondents (every column; floats to rounding)."""
    frame = make_sample(seed, strata, clustered)
    assume(bool(frame["in_pop"].any()))  # a sample with no one in the population has no margin to compare
    frame["c"] = frame["stratum_id"].map(lambda s: "a" if int(s[1:]) % 2 else "b")  # each stratum in one c
    con = duckdb.connect(":memory:")
    con.register("sample", frame)
    design = design_sql(DESIGN_SOURCE, lonely)
    try:
        summed = con.execute(estimate_sql(BASE, design, ["c"], lonely, margins=["c"])).df()
        written = con.execute(estimate_sql(f"{BASE} UNION ALL SELECT * REPLACE ('all' AS c) FROM ({BASE})", design,
                                           ["c"], lonely)).df()
    finally:
        con.close()
    assert list(summed.columns) == list(written.columns) and len(summed) == len(written)
    assert "all" in set(summed["c"])
    for col in summed.columns:
        if summed[col].dtype.kind == "f":
            np.testing.assert_allclose(summed[col].to_numpy(float), written[col].to_numpy(float), rtol=1e-9,
                                       atol=1e-15)
        else:
            assert summed[col].tolist() == written[col].tolist(), col


def test_a_domain_inside_one_psu_has_a_variance_of_exactly_0() -> None:
    """Its z is 0 in every PSU; the per-stratum sums give that only to rounding, which is taken as 0."""
    frame = make_sample(5, strata=3, clustered=True)
    inside = (frame["psu_id"] == "p1-0") & frame["in_pop"] & frame["answered"]
    assert inside.sum() >= 2 and frame.loc[inside, "y"].nunique() == 2
    frame.loc[frame["group"] == "g2", "group"] = "g1"
    frame.loc[inside, "group"] = "g2"
    frame["is_native"] = frame["group"] == "nat"
    raw = run_sql(frame)
    g2 = raw[raw["group"] == "g2"]
    assert len(g2) and set(g2["variance"]) == {0.0}
    varied = frame[inside].groupby("c")["y"].nunique()  # cells whose outcome varies: not zeroed as constant
    assert (varied == 2).any()
    assert (raw.set_index(["c", "group"]).loc[[(c, "g2") for c in varied[varied == 2].index], "variance"] == 0.0).all()


def korn_graubard(p: float, se: float, n: int, df: int) -> tuple[float, float]:
    """R svyciprop(method = "beta"), written out for one cell."""
    n_star = p * (1 - p) / se ** 2 if se > 0 and 0 < p < 1 else n
    n_star *= (stats.t.ppf(0.025, max(n - 1, 1)) / stats.t.ppf(0.025, max(df, 1))) ** 2
    x = n_star * p
    lo = stats.beta.ppf(0.025, x, n_star - x + 1) if x > 0 else 0.0
    hi = stats.beta.ppf(0.975, x + 1, n_star - x) if x < n_star else 1.0
    return lo, hi


def test_share_intervals_are_korn_graubard_inside_unit_interval() -> None:
    frame = make_sample(11, strata=3, clustered=True)
    got = published(frame)
    assert len(got) > 3
    for row in got.itertuples():
        lo, hi = korn_graubard(row.estimate, row.se, row.n, row.df)
        assert (row.ci_low, row.ci_high) == (pytest.approx(lo, rel=1e-9, abs=1e-12), pytest.approx(hi, rel=1e-9))
        assert 0 <= row.ci_low <= row.estimate <= row.ci_high <= 1
    # degrees of freedom: PSUs - strata the cell touches
    a_nat = (frame["in_pop"] & frame["answered"] & (frame["c"] == "a") & (frame["group"] == "nat"))
    row = got[(got.c == "a") & (got.group == "nat")].iloc[0]
    assert row.df == frame[a_nat]["psu_id"].nunique() - frame[a_nat]["stratum_id"].nunique()


def test_extreme_shares_and_means() -> None:
    low, high = intervals(np.array([0.0, 1.0, 0.3, 4.2]), np.array([0.0, 0.0, 0.0, 0.5]), np.array([30, 30, 30, 40]),
                          np.array([29, 29, 29, 10]), np.array([True, True, True, False]))
    assert low[0] == 0.0 and high[0] == pytest.approx(stats.beta.ppf(0.975, 1, 30))  # 0 of 30: Clopper-Pearson
    assert high[1] == 1.0 and low[1] == pytest.approx(stats.beta.ppf(0.025, 30, 1))
    assert 0 < low[2] < 0.3 < high[2] < 1  # SE 0 with 0 < p < 1: the unweighted n gives the width
    t = stats.t.ppf(0.975, 10)  # means: Wald with t(df)
    assert (low[3], high[3]) == (pytest.approx(4.2 - t * 0.5), pytest.approx(4.2 + t * 0.5))


def test_default_rule_suppresses_and_flags() -> None:
    frame = make_sample(11, strata=3, clustered=True)
    got = published(frame, Rule())
    ref = reference(frame)
    for row in got.itertuples():
        n, n_eff = ref[(row.c, row.group)]["n"], ref[(row.c, row.group)]["n_eff"]
        if n < 20 or n_eff < 30:
            assert row.reliability == "suppressed" and "cv" not in row.flags
            assert pd.isna(row.estimate) and pd.isna(row.se) and pd.isna(row.ci_low) and pd.isna(row.gap)
        elif row.reliability != "suppressed" and n < 50:
            assert row.reliability == "low" and "n<50" in row.flags
    assert "suppressed" in set(got["reliability"])
    assert Rule().describe() == ("suppress if n < 20 or n_eff < 30 or item_nonresponse > 0.5, then complementary "
                                 "suppression over every breakdown's tables together (shared cells, sums and "
                                 "differences of cells, shares of 0 or 1); low if n < 50 or "
                                 "cv > 0.3 or rel_ci_width > 1.3 or "
                                 "item_nonresponse >= 0.2 or df < 8 or se = 0 or a share of 0 or 1")


def test_thresholds_are_inclusive_as_written() -> None:
    """Item non-response of exactly 20% is flagged (domain.md: 20-50% flag); exactly 50% is not suppressed."""
    frame = make_sample(5, strata=2, clustered=False)
    frame["in_pop"] = True
    for share, rows in ((0.2, 50), (0.5, 40)):
        part = frame.iloc[:rows].copy()
        part["c"], part["group"], part["is_native"] = "a", "nat", True
        part["answered"] = np.arange(rows) >= int(rows * share)
        part.loc[~part["answered"], "y"] = np.nan
        row = published(part, Rule(min_n=0, min_n_eff=0)).iloc[0]
        assert row["item_nonresponse"] == share
        assert row["reliability"] == "low" and "item_nonresponse>=0.2" in row["flags"]


def test_a_cell_of_few_design_degrees_of_freedom_is_flagged_whatever_its_interval() -> None:
    """A share near 1 from respondents in 3 PSUs of 2 strata (1 degree of freedom) had a Korn–Graubard interval
    within 130% of the estimate, a CV below 0.30 and n >= 50: it was published `ok`, its variance estimated from
    one degree of freedom. Below 8 degrees of freedom (NCHS's standard for proportions) a cell is now `low`,
    `df<8`; at 8 it is not."""
    rows = []
    for psus, strata in ((3, 2), (10, 2)):  # df = PSUs − strata: 1, then 8
        for p in range(psus):
            for i in range(30):
                rows.append({"stratum_id": f"s{p % strata}", "psu_id": f"p{psus}-{p}", "has_design": True,
                             "c": f"df{psus - strata}", "group": "nat", "w": 1.0, "y": float(i != 0 or p != 0),
                             "answered": True, "in_pop": True, "is_native": True})
    frame = pd.DataFrame(rows)
    got = published(frame, Rule()).set_index("c")
    one, eight = got.loc["df1"], got.loc["df8"]
    assert (int(one["df"]), int(one["n"])) == (1, 90) and one["cv"] < 0.30
    assert (one["ci_high"] - one["ci_low"]) / one["estimate"] < 1.30
    assert (one["reliability"], one["flags"]) == ("low", "df<8")
    assert (int(eight["df"]), eight["reliability"], eight["flags"]) == (8, "ok", "")
    assert published(frame, Rule(flag_df=0)).set_index("c").loc["df1", "reliability"] == "ok"


def test_item_nonresponse_share_suppresses() -> None:
    frame = make_sample(5, strata=2, clustered=False)
    frame["in_pop"] = True
    frame["answered"] = frame["c"] == "a"
    frame.loc[~frame["answered"], "y"] = np.nan
    got = published(frame, Rule(min_n=0, min_n_eff=0))
    b = got[got.c == "b"]
    assert list(b["item_nonresponse"]) == [1.0] * len(b)
    assert set(b["reliability"]) == {"suppressed"} and b["estimate"].isna().all()


def test_rule_rejects_negative_and_non_finite_thresholds() -> None:
    with pytest.raises(UsageError, match=r"min_n \(--min-n\) must be a finite number >= 0"):
        Rule(min_n=-1)
    with pytest.raises(UsageError, match=r"min_n_eff \(--min-n-eff\) must be a finite number >= 0 \(got nan\)"):
        Rule(min_n_eff=float("nan"))
    with pytest.raises(UsageError, match=r"flag_rel_ci \(--flag-rel-ci\) must be a finite number >= 0 \(got inf\)"):
        Rule(flag_rel_ci=float("inf"))
    with pytest.raises(UsageError) as share:  # `--suppress-nonresponse 5` meant 5 %, and never suppressed a cell
        Rule(suppress_nonresponse=5)
    assert str(share.value) == ("suppression rule: suppress_nonresponse (--suppress-nonresponse) is a share between 0 "
                                "and 1 (got 5; for 5 % write 0.05)")
    with pytest.raises(UsageError, match=r"flag_nonresponse \(--flag-nonresponse\) is a share between 0 and 1"):
        Rule(flag_nonresponse=20.0)
    assert Rule(suppress_nonresponse=1.0, flag_nonresponse=0.0).suppress_nonresponse == 1.0
    with pytest.raises(UsageError, match="unknown lonely-PSU method 'fail'; choose from adjust, certainty"):
        estimate_sql(BASE, "SELECT 1", ["c"], "fail")


@pytest.mark.parametrize("prefix", ["", "FI-"])
def test_collapse_joins_the_next_stratum_in_numeric_order(prefix: str) -> None:
    """Stratum codes 1, 2, 3, 10 (PSUs 1, 2, 1, 2): 1 joins 2, 3 joins 10 (not '10' < '2' as text); a block whose
    strata all have one PSU collapses them together. ESS strata are stored with their country (`FI-885`): the
    number they end in orders them (an audit found FI-885 joined to FI-89, not FI-886)."""
    psus = {f"{prefix}1": 1, f"{prefix}2": 2, f"{prefix}3": 1, f"{prefix}10": 2}
    rows = [("x", code, f"{code}-{p}") for code, k in psus.items() for p in range(k)] + [("y", "1", "a"), ("y", "2", "b")]
    frame = pd.DataFrame(rows, columns=["block", "stratum", "psu_id"])
    frame["stratum_id"] = frame["block"] + "|" + frame["stratum"]
    con = duckdb.connect(":memory:")
    con.register("sample", frame)
    try:
        got = dict(con.execute(f"SELECT stratum_id, var_stratum || ' ' || n_h FROM ({design_sql('SELECT * FROM sample', 'collapse')})")
                   .fetchall())
    finally:
        con.close()
    p = prefix
    assert got == {f"x|{p}1": f"x|{p}2 3", f"x|{p}2": f"x|{p}2 3", f"x|{p}3": f"x|{p}10 3", f"x|{p}10": f"x|{p}10 3",
                   "y|1": "y|collapsed 2", "y|2": "y|collapsed 2"}
