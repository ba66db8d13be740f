"""Weighted ratio estimates with linearised (Taylor) standard errors, in DuckDB SQL, and their intervals.

Every estimate is a ratio R = Σ w·y / Σ w over the respondents of a domain (a cell) whose
outcome is known. Its variance is linearised: z_i = w_i (y_i − R) / Σ w over the domain (zero
outside it), summed per primary sampling unit p of (variance) stratum h, and

    V = Σ_h n_h/(n_h − 1) · Σ_p (z_hp − z̄_h)²,   n_h = PSUs of stratum h in the whole sample,

computed as Σ_p z_hp² − (Σ_p z_hp)²/n_h over the PSUs the domain touches (the others have
z = 0). A stratum with one PSU (a *lonely* PSU) is handled by the declared method
(:data:`LONELY_PSU`, as R's ``survey.lonely.psu``): ``adjust`` (default) centres its PSU at the
grand mean c = Σ z / Σ n_h instead of the stratum mean and adds (z_hp − c)²; ``certainty`` and
``remove`` add nothing; ``collapse`` first merges each lonely stratum into the nearest stratum
with two or more PSUs of the same block (survey × wave × country; the next in stratum order, else
the previous; see :func:`design_sql`), and a stratum still alone is adjusted. The gap of a group
against the native group of the same cell uses d = z_group − z_native per PSU, so the covariance
of the two domains within the same design is included. Sums are compensated (``fsum``), so
parallel aggregation gives the same stored numbers run after run.

The data are read once, into weighted moments per cell, stratum and PSU (or, with ``moments``,
arrive as moments at a finer grouping and are summed). A PSU's z is (Σwy − R·Σw)/W (W = Σ w of
the domain), so Σ_p z_hp² and Σ_p z_hp of a stratum follow from R, W and the stratum's sums of PSU
products — Σ_p (Σwy)², Σ_p Σwy·Σw, Σ_p (Σw)² — and of Σwy and Σw: the PSU rows are summed per stratum
before R is known, and no cell × PSU table is formed. Respondents without a design PSU are their
own PSUs, so their products are the moments Σw²y², Σw²y, Σw² of the stratum (no per-respondent rows
are kept); a group and its native group never share such a PSU. Design PSUs both domains touch
give the gap's cross term −2·Σ_p z_group·z_native from the products of the two domains' PSU sums.
A margin over a key column the strata lie within (``margins``: a country) is summed per stratum, as
its PSUs are those of the stratum's own cell. Expanding the squares leaves rounding of about 1e-16
of the terms, so a variance below :data:`ROUNDING` of their size is 0 (a domain inside one PSU),
and a cell whose outcome does not vary gets a variance of exactly 0.

The base relation handed to :func:`estimate_sql` has the key columns, ``"group"``,
``is_native``, ``source``, ``w``, ``y``, ``answered``, ``stratum_id``, ``psu_id`` and
``has_design``; the design relation is what :func:`design_sql` gives (``stratum_id``,
``var_stratum``, ``n_h``).

Intervals (:func:`intervals`) are computed from the SQL result in Python: shares get the
Korn–Graubard interval (R ``svyciprop(method = "beta")``), means the Wald interval; both use the
Student t quantile with the cell's design degrees of freedom (PSUs − strata).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from harmonise.compile.sqltext import quote_ident, sql_literal
from harmonise.errors import UsageError

if TYPE_CHECKING:  # numpy loads with the first estimate, not with the CLI
    import numpy as np

ALPHA = 0.05  # two-sided 95% intervals
ALL = "all"  # the value of a margin (over a --by dimension) and of a breakdown's total group
LONELY_PSU = ("adjust", "certainty", "remove", "collapse")
LONELY_WORDS = {
    "adjust": "a stratum with one PSU is centred at the grand mean (R survey lonely.psu = \"adjust\")",
    "certainty": "a stratum with one PSU is a certainty PSU and adds no variance (R survey \"certainty\")",
    "remove": "a stratum with one PSU adds no variance (R survey \"remove\")",
    "collapse": "a stratum with one PSU is collapsed with its neighbouring stratum (else adjusted)",
}


def check_lonely(method: str) -> str:
    """The lonely-PSU method, or a usage error naming the choices."""
    if method not in LONELY_PSU:
        raise UsageError(f"unknown lonely-PSU method {method!r}; choose from {', '.join(LONELY_PSU)}")
    return method


@dataclass(frozen=True)
class Rule:
    """Suppression and reliability thresholds (defaults from domain.md); recorded with every result.

    Bounds are as domain.md writes them: suppress when n < min_n, n_eff < min_n_eff or item
    non-response > suppress_nonresponse; flag when n < flag_n, CV > flag_cv, the relative CI width
    > flag_rel_ci or item non-response >= flag_nonresponse (the rule's "20–50%" includes 20%). Beyond
    domain.md, flag when the design degrees of freedom are below flag_df (NCHS's data presentation
    standards for proportions, 2017: fewer than 8), where the variance itself is unstable.
    """

    min_n: int = 20
    min_n_eff: float = 30.0
    suppress_nonresponse: float = 0.50
    flag_n: int = 50
    flag_cv: float = 0.30
    flag_rel_ci: float = 1.30
    flag_nonresponse: float = 0.20
    flag_df: int = 8

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if value is None or not math.isfinite(value) or value < 0:
                raise UsageError(f"suppression rule: {name} (--{name.replace('_', '-')}) must be a finite number >= 0 "
                                 f"(got {value!r})")
            if name.endswith("nonresponse") and value > 1:  # a percentage would silently never suppress or flag
                raise UsageError(f"suppression rule: {name} (--{name.replace('_', '-')}) is a share between 0 and 1 "
                                 f"(got {value!r}; for {value:g} % write {value / 100:g})")

    def describe(self) -> str:
        """The rule as one line, stored beside every estimate."""
        return (f"suppress if n < {self.min_n} or n_eff < {self.min_n_eff:g} or item_nonresponse > "
                f"{self.suppress_nonresponse:g}, then complementary suppression over every breakdown's "
                f"tables together (shared cells, sums and differences of cells, shares of 0 or 1); low if "
                f"n < {self.flag_n} or cv > {self.flag_cv:g} or rel_ci_width > {self.flag_rel_ci:g} or "
                f"item_nonresponse >= {self.flag_nonresponse:g} or df < {self.flag_df} or se = 0 or a share of 0 "
                "or 1")

    def words(self) -> str:
        """The rule in words, for a chart caption."""
        return (f"Not shown (suppressed): cells with fewer than {self.min_n} respondents, an effective sample "
                f"size below {self.min_n_eff:g} or item non-response above {self.suppress_nonresponse:.0%}, and "
                f"further cells where needed so that no hidden value can be derived from the shown ones. Open "
                f"markers (low reliability): fewer than {self.flag_n} respondents, CV above {self.flag_cv:.0%}, "
                f"95% CI wider than {self.flag_rel_ci:.0%} of the estimate, item non-response of "
                f"{self.flag_nonresponse:.0%} or more, fewer than {self.flag_df} design degrees of freedom, a "
                "standard error of 0, or a share of 0% or 100%.")


# the number a stratum code ends in (the code itself when it is a number; `FI-885` → 885): its neighbours' order
NUMBER_SQL = r"try_cast(regexp_extract(stratum, '([0-9]+([.][0-9]+)?)$', 1) AS DOUBLE)"


def design_sql(source: str, lonely: str) -> str:
    """Variance strata: ``stratum_id → var_stratum`` and ``n_h`` (PSUs of the variance stratum).

    ``source`` yields one row per respondent with ``stratum_id``, ``psu_id``, ``block`` (the set
    within which strata may be collapsed) and ``stratum`` (the stratum code, for neighbour order).
    With ``collapse``, a lonely stratum joins the nearest stratum of its block that has two or more
    PSUs — the next one in stratum order (by the number a code ends in, as ``FI-885`` after ``FI-884``
    and before ``FI-886``, where the codes end in one; else as text), else the previous one; the lonely
    strata of a block without such a stratum are collapsed together.
    """
    counted = (f"SELECT stratum_id, any_value(block) AS block, any_value(stratum) AS stratum, "
               f"count(DISTINCT psu_id) AS n FROM ({source}) GROUP BY stratum_id")
    if lonely != "collapse":
        return f"SELECT stratum_id, stratum_id AS var_stratum, n AS n_h FROM ({counted})"
    return f"""
WITH s AS ({counted}),
o AS (SELECT *, row_number() OVER (PARTITION BY block ORDER BY {NUMBER_SQL} NULLS LAST, stratum,
                                   stratum_id) AS pos FROM s),
t AS (SELECT *, min(CASE WHEN n > 1 THEN pos END) OVER (PARTITION BY block ORDER BY pos
                     ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING) AS next_ok,
                max(CASE WHEN n > 1 THEN pos END) OVER (PARTITION BY block ORDER BY pos
                     ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS prev_ok FROM o),
v AS (SELECT t.stratum_id, CASE WHEN t.n > 1 THEN t.stratum_id
                                ELSE coalesce(a.stratum_id, b.stratum_id, t.block || '|collapsed') END AS var_stratum, t.n
      FROM t LEFT JOIN o a ON a.block = t.block AND a.pos = t.next_ok
             LEFT JOIN o b ON b.block = t.block AND b.pos = t.prev_ok)
SELECT stratum_id, var_stratum, sum(n) OVER (PARTITION BY var_stratum) AS n_h FROM v"""


ROUNDING = 1e-12  # a variance this small against the size of the sums it came from is an exact 0 rounded


def _variance(source: str, lonely: str) -> str:
    """Per-cell design variance from per-stratum sums ``s2`` (Σ_p z_hp²) and ``s1`` (Σ_p z_hp) and ``n_h``
    of the relation named ``source``; ``sc`` is the size of the terms ``s2`` was summed from, and a variance
    below :data:`ROUNDING` of their sum is 0 (a domain within one PSU has z = 0 there, which the expanded
    sums give to rounding). A lonely stratum's centre ``c`` is a join to the per-cell sums: a window
    partitioned by cell costs DuckDB a fixed ~30 ms per query, about half of a small database's estimate."""
    alone = "0" if lonely in ("certainty", "remove") else "s2 - 2 * c * s1 + c * c"
    return f"""SELECT cell, CASE WHEN v <= {ROUNDING} * sc THEN 0.0 ELSE v END AS v FROM (
      SELECT cell, fsum(CASE WHEN n_h > 1 THEN n_h / (n_h - 1.0) * (s2 - s1 * s1 / n_h) ELSE {alone} END) AS v,
             fsum(sc) AS sc
      FROM {source} JOIN (SELECT cell, fsum(s1) / sum(n_h) AS c FROM {source} GROUP BY cell) USING (cell)
      GROUP BY cell)"""


MOMENTS = """SELECT {keys}, source, stratum_id, CASE WHEN has_design THEN psu_id END AS psu,
         count(wa) AS n, count(*) - count(wa) AS n_miss, fsum(wa) AS sw, fsum(wa * wa) AS sw2,
         fsum(wa * y) AS swy, fsum(wa * wa * y) AS sw2y, fsum(wa * wa * y * y) AS sw2y2,
         min(CASE WHEN answered THEN y END) AS ymin, max(CASE WHEN answered THEN y END) AS ymax,
         bool_and(has_design) AS all_design, bool_or(has_design) AS any_design
  FROM (SELECT *, CASE WHEN answered THEN w END AS wa FROM ({base})) GROUP BY ALL"""


# the moments every coarser grouping sums from a finer one (the respondent moments sw2y, sw2y2 aside)
SUMMED = ("sum(n)::BIGINT AS n, sum(n_miss)::BIGINT AS n_miss, fsum(sw) AS sw, fsum(sw2) AS sw2, fsum(swy) AS swy, "
          "min(ymin) AS ymin, max(ymax) AS ymax, bool_and(all_design) AS all_design, bool_or(any_design) AS any_design")


def moments_sql(base: str, keys: str) -> str:
    """Sum moments of ``base`` (columns as :data:`MOMENTS` yields them) up to ``keys``, stratum and PSU."""
    return (f"SELECT {keys}, source, stratum_id, psu, {SUMMED}, fsum(sw2y) AS sw2y, fsum(sw2y2) AS sw2y2 "
            f"FROM ({base}) GROUP BY ALL")


def margins_sql(relation: str, margins: Sequence[str], unmargined: Sequence[tuple[str, str]] = ()) -> str:
    """``relation`` and, for every non-empty subset of the ``margins`` columns, its rows with those columns
    set to :data:`ALL` (the margin over them); ``unmargined``: (survey, wave) pairs given no margin."""
    skip = (" WHERE survey || chr(31) || wave NOT IN (" +
            ", ".join(sql_literal(f"{s}\x1f{w}") for s, w in unmargined) + ")") if unmargined else ""
    return " UNION ALL ".join(
        "SELECT * " + (f"REPLACE ({', '.join(f'{sql_literal(ALL)} AS {quote_ident(c)}' for c in subset)}) "
                       if subset else "") + f"FROM {relation}" + (skip if subset else "")
        for subset in (tuple(c for i, c in enumerate(margins) if mask >> i & 1) for mask in range(2 ** len(margins))))


def estimate_sql(base: str, design: str, keys: list[str], lonely: str = "adjust", *, moments: bool = False,
                 margins: Sequence[str] = (), unmargined: Sequence[tuple[str, str]] = ()) -> str:
    """SQL giving one row per (keys…, group): n, n_eff, estimate, variance, df and the gap to the native group;
    ``constant``: every respondent with an answer gave the same value (a share of 0 or 1, a mean at one value).

    ``base`` and ``design`` are SELECT statements (see the module docstring). ``keys`` are the
    grouping columns besides ``group``; the native group of a cell is the row with ``is_native``.
    With ``moments``, ``base`` holds moments already (the columns :data:`MOMENTS` yields, at a
    finer grouping), which are summed; moments add up, so the result is the same. ``margins``: key
    columns each stratum lies within (one value of each per stratum, as a country), whose margin
    (:data:`ALL`) is added here from the per-stratum sums rather than by the base. ``unmargined``: survey-waves
    (keys holding survey and wave) given no such margin. Nothing is
    suppressed here: :func:`harmonise.reports.disclosure.publish` applies the rule. The variance comes
    from per-stratum sums of PSU products (see the module docstring).
    """
    check_lonely(lonely)
    k = ", ".join(quote_ident(c) for c in keys)
    kg = f"{k}, \"group\"" if k else '"group"'
    grp_keys = f"{k}, \"group\", is_native" if k else '"group", is_native'
    m_sql = moments_sql(base, grp_keys) if moments else MOMENTS.format(keys=grp_keys, base=base)
    same_keys = " AND ".join(f"g.{quote_ident(c)} = n.{quote_ident(c)}" for c in keys) or "TRUE"
    # a cell's source: the survey-waves whose respondents answered, else (none did) those of its population;
    # a cell's survey-waves and variance strata, without DISTINCT where the keys make them so (DISTINCT
    # aggregates were ~10 % of an estimate with design PSUs): a cell of one survey-wave has one source, and
    # its per-stratum rows (stratum ids hold the survey-wave) have one variance stratum each unless collapsed
    sources = "any_value(source)" if {"survey", "wave"} <= set(keys) else \
        "string_agg(DISTINCT source, ', ' ORDER BY source)"
    strata = "count(var_stratum)" if lonely != "collapse" else "count(DISTINCT var_stratum)"
    g_keys = ", ".join(f"g.{quote_ident(c)}" for c in keys)
    x_keys = " AND ".join(f"g.{quote_ident(c)} = x.{quote_ident(c)}" for c in [*keys, "group"])
    return f"""
WITH design AS MATERIALIZED ({design}),
m AS MATERIALIZED ({m_sql}),
ms AS (
  SELECT {grp_keys}, source, stratum_id, {SUMMED}, sum(CASE WHEN n = 0 THEN 0 WHEN psu IS NULL THEN n ELSE 1 END)::BIGINT AS psus,
         fsum(CASE WHEN n > 0 THEN CASE WHEN psu IS NULL THEN sw2y2 ELSE swy * swy END END) AS qaa,
         fsum(CASE WHEN n > 0 THEN CASE WHEN psu IS NULL THEN sw2y ELSE swy * sw END END) AS qab,
         fsum(CASE WHEN n > 0 THEN CASE WHEN psu IS NULL THEN sw2 ELSE sw * sw END END) AS qbb
  FROM m GROUP BY {grp_keys}, source, stratum_id),
s AS MATERIALIZED (SELECT s.*, d.var_stratum, d.n_h FROM ({margins_sql("ms", margins, unmargined)}) s JOIN design d USING (stratum_id)),
r AS MATERIALIZED (
  SELECT *, swy / nullif(sw, 0) AS est, n_miss / (n + n_miss) AS nonresp,
         row_number() OVER () AS cell, dense_rank() OVER (ORDER BY {k or "1"}) AS parent
  FROM (SELECT {grp_keys}, {SUMMED}, coalesce({sources} FILTER (WHERE n > 0), {sources}) AS source,
               sum(psus)::BIGINT AS psus, {strata} FILTER (WHERE n > 0) AS strata
        FROM s GROUP BY {grp_keys})),
st AS MATERIALIZED (
  SELECT r.cell, r.parent, r.is_native, s.var_stratum, s.n_h,
         (s.qaa - 2 * r.est * s.qab + r.est * r.est * s.qbb) / (r.sw * r.sw) AS s2, (s.swy - r.est * s.sw) / r.sw AS s1,
         (s.qaa + r.est * r.est * s.qbb) / (r.sw * r.sw) AS sc
  FROM s JOIN r USING ({grp_keys}) WHERE r.sw > 0 AND s.n > 0),
x AS (
  SELECT {g_keys + ", " if g_keys else ""}g."group", g.stratum_id, fsum(g.swy * n.swy) AS xaa, fsum(g.swy * n.sw) AS xab,
         fsum(g.sw * n.swy) AS xba, fsum(g.sw * n.sw) AS xbb
  FROM m g JOIN m n ON {same_keys} AND g.stratum_id = n.stratum_id AND g.psu = n.psu
  WHERE NOT g.is_native AND n.is_native AND g.n > 0 AND n.n > 0
  GROUP BY ALL),
zd AS (
  SELECT cell, var_stratum, any_value(n_h) AS n_h, fsum(s2) AS s2, fsum(s1) AS s1, fsum(sc) AS sc FROM (
    SELECT cell, var_stratum, n_h, s2, s1, sc FROM st WHERE NOT is_native
    UNION ALL
    SELECT g.cell, n.var_stratum, n.n_h, n.s2, -n.s1, n.sc FROM st n
    JOIN (SELECT cell, parent FROM r WHERE NOT is_native) g USING (parent) WHERE n.is_native
    UNION ALL
    SELECT g.cell, d.var_stratum, d.n_h,
           -2 * (x.xaa - nat.est * x.xab - g.est * x.xba + g.est * nat.est * x.xbb) / (g.sw * nat.sw), 0.0, 0.0
    FROM ({margins_sql("x", margins, unmargined)}) x JOIN r g ON {x_keys} AND NOT g.is_native
    JOIN r nat ON nat.parent = g.parent AND nat.is_native JOIN design d ON d.stratum_id = x.stratum_id
    WHERE g.sw > 0 AND nat.sw > 0) u
  GROUP BY cell, var_stratum),
sv AS (SELECT cell, var_stratum, any_value(n_h) AS n_h, fsum(s2) AS s2, fsum(s1) AS s1, fsum(sc) AS sc FROM st
       GROUP BY cell, var_stratum),
v AS ({_variance("sv", lonely)}),
vd AS ({_variance("zd", lonely)})
SELECT {k + ", " if k else ""}"group", r.is_native, r.source, r.n, r.sw * r.sw / nullif(r.sw2, 0) AS n_eff,
       r.nonresp AS item_nonresponse, r.est AS estimate,
       CASE WHEN r.ymin = r.ymax THEN 0.0 ELSE greatest(coalesce(v.v, 0), 0) END AS variance,
       r.psus - r.strata AS df, nat.est AS native_estimate, nat.cell IS NOT NULL AS has_native,
       CASE WHEN NOT r.is_native AND nat.cell IS NOT NULL THEN greatest(coalesce(vd.v, 0), 0) END AS gap_variance,
       CASE WHEN r.all_design THEN 'stratum/psu' WHEN r.any_design THEN 'mixed: stratum/psu where present, else '
            || 'respondents as PSUs' ELSE 'respondents as PSUs' END AS design_kind,
       coalesce(r.ymin = r.ymax, FALSE) AS constant
FROM r LEFT JOIN v USING (cell) LEFT JOIN vd USING (cell)
LEFT JOIN (SELECT parent, cell, est FROM r WHERE is_native) nat ON nat.parent = r.parent AND NOT r.is_native
     AND r."group" <> '{ALL}'
ORDER BY {kg}"""


def t_quantile(df: float | None) -> float:
    """The two-sided 95% t quantile for ``df`` degrees of freedom (below 1 taken as 1; None: the normal one)."""
    from scipy.special import ndtri, stdtrit  # type: ignore[import-untyped]

    return float(ndtri(1 - ALPHA / 2) if df is None else stdtrit(max(float(df), 1.0), 1 - ALPHA / 2))


def intervals(estimate: np.ndarray, se: np.ndarray, n: np.ndarray, df: np.ndarray,
              share: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """95% intervals: Korn–Graubard for shares (``share`` true), Wald with t(df) for means.

    Korn–Graubard (R ``svyciprop(method = "beta")``): the effective size n* = p(1 − p)/SE²,
    scaled by (t_{n−1}/t_df)² (t quantiles at α/2, df = PSUs − strata), gives the Clopper–Pearson
    interval of x = n*·p successes in n* trials: [Beta⁻¹(α/2; x, n* − x + 1), Beta⁻¹(1 − α/2; x + 1,
    n* − x)], 0 and 1 at the ends. Where SE is 0 or p is 0 or 1, n* is the unweighted n (R would
    give no interval), scaled alike: few degrees of freedom widen it beyond the exact binomial interval.
    Degrees of freedom below 1 are taken as 1. Means: R ± t_df·SE.
    """
    import numpy as np

    # scipy.special, not scipy.stats: the same functions (bit for bit), without ~1 s of importing scipy.stats
    from scipy.special import betaincinv, stdtrit  # type: ignore[import-untyped]

    est = np.asarray(estimate, dtype=float)
    se_ = np.asarray(se, dtype=float)
    n_ = np.asarray(n, dtype=float)
    dof = np.maximum(np.asarray(df, dtype=float), 1.0)
    tq = stdtrit(dof, 1 - ALPHA / 2)
    low, high = est - tq * se_, est + tq * se_
    shr = np.asarray(share, dtype=bool) & np.isfinite(est)
    if shr.any():
        p, var, m = est[shr], se_[shr] ** 2, np.maximum(n_[shr], 1.0)
        inner = (var > 0) & (p > 0) & (p < 1)
        n_star = np.where(inner, p * (1 - p) / np.where(var > 0, var, 1.0), m)
        n_star = n_star * (stdtrit(np.maximum(m - 1, 1.0), ALPHA / 2) / stdtrit(dof[shr], ALPHA / 2)) ** 2
        x = n_star * p
        with np.errstate(invalid="ignore", divide="ignore"):
            lo = np.where(x > 0, betaincinv(np.maximum(x, 1e-300), n_star - x + 1, ALPHA / 2), 0.0)
            hi = np.where(n_star - x > 0, betaincinv(x + 1, np.maximum(n_star - x, 1e-300), 1 - ALPHA / 2), 1.0)
        low[shr], high[shr] = lo, hi
    return low, high
