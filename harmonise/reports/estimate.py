"""Weighted ratio estimates with linearised (Taylor) standard errors, in DuckDB SQL.

Every estimate is a ratio R = Σ w·y / Σ w over the respondents of a domain (a cell) whose
outcome is known. Its variance is linearised: z_i = w_i (y_i − R) / Σ w over the domain (zero
outside it), summed per primary sampling unit p of stratum h, and

    V = Σ_h n_h/(n_h − 1) · Σ_p (z_hp − z̄_h)²,   n_h = PSUs of stratum h in the whole sample,

computed as Σ_p z_hp² − (Σ_p z_hp)²/n_h over the PSUs the domain touches (the others have
z = 0). Strata with a single PSU contribute nothing (documented in docs/indicators.md). The gap
of a group against the native group of the same cell uses d = z_group − z_native per PSU, so
the covariance of the two domains within the same design is included. Sums are compensated
(``fsum``), so parallel aggregation gives the same stored numbers run after run.

The data are read once, into weighted moments per cell, stratum and PSU (or, with ``moments``,
arrive as moments at a finer grouping and are summed). Respondents without a
design PSU are their own PSUs, so their Σ z² and Σ z per stratum follow from the moments
Σw²y², Σw²y, Σw² of the stratum (no per-respondent rows are kept); a group and its native group
never share such a PSU, so their gap needs no cross term. Design PSUs keep one row each and
contribute the cross term −2·z_group·z_native of the PSUs both domains touch.

The base relation handed to :func:`estimate_sql` has the key columns, ``"group"``,
``is_native``, ``w``, ``y``, ``answered``, ``stratum_id``, ``psu_id`` and ``has_design``; the
design relation has ``stratum_id`` and ``n_h`` (PSUs per stratum).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from harmonise.compile.sqltext import quote_ident
from harmonise.errors import UsageError

Z95 = 1.959963984540054  # standard normal quantile for a two-sided 95% interval


@dataclass(frozen=True)
class Rule:
    """Suppression and reliability thresholds (defaults from domain.md); recorded with every result."""

    min_n: int = 20
    min_n_eff: float = 30.0
    suppress_nonresponse: float = 0.50
    flag_n: int = 50
    flag_cv: float = 0.30
    flag_rel_ci: float = 1.30
    flag_nonresponse: float = 0.20

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if value is None or not math.isfinite(value) or value < 0:
                raise UsageError(f"suppression rule: {name} must be a finite number >= 0 (got {value!r})")

    def describe(self) -> str:
        """The rule as one line, stored beside every estimate."""
        return (f"suppress if n < {self.min_n} or n_eff < {self.min_n_eff:g} or item_nonresponse > "
                f"{self.suppress_nonresponse:g}; low if n < {self.flag_n} or cv > {self.flag_cv:g} or "
                f"rel_ci_width > {self.flag_rel_ci:g} or item_nonresponse > {self.flag_nonresponse:g}")


def _variance(source: str) -> str:
    """Per-cell design variance from the per-stratum sums ``s2`` (Σ_p z_hp²) and ``s1`` (Σ_p z_hp)."""
    return f"""SELECT cell, fsum(CASE WHEN p.n_h > 1 THEN p.n_h / (p.n_h - 1.0) * (s.s2 - s.s1 * s.s1 / p.n_h)
                             ELSE 0 END) AS v
      FROM {source} s JOIN design p USING (stratum_id) GROUP BY cell"""


MOMENTS = """SELECT {keys}, stratum_id, CASE WHEN has_design THEN psu_id END AS psu,
         count(wa) AS n, count(*) - count(wa) AS n_miss, fsum(wa) AS sw, fsum(wa * wa) AS sw2,
         fsum(wa * y) AS swy, fsum(wa * wa * y) AS sw2y, fsum(wa * wa * y * y) AS sw2y2,
         bool_and(has_design) AS all_design, bool_or(has_design) AS any_design
  FROM (SELECT *, CASE WHEN answered THEN w END AS wa FROM ({base})) GROUP BY ALL"""


def _sd(variance: str) -> str:
    """A standard error from a variance column (missing: 0; rounding below 0: 0)."""
    return f"sqrt(greatest(coalesce({variance}, 0), 0))"


def moments_sql(base: str, keys: str) -> str:
    """Sum moments of ``base`` (columns as :data:`MOMENTS` yields them) up to ``keys``, stratum and PSU."""
    return (f"SELECT {keys}, stratum_id, psu, sum(n)::BIGINT AS n, sum(n_miss)::BIGINT AS n_miss, fsum(sw) AS sw, "
            f"fsum(sw2) AS sw2, fsum(swy) AS swy, fsum(sw2y) AS sw2y, fsum(sw2y2) AS sw2y2, "
            f"bool_and(all_design) AS all_design, bool_or(any_design) AS any_design FROM ({base}) GROUP BY ALL")


def estimate_sql(base: str, design: str, keys: list[str], rule: Rule, *, moments: bool = False) -> str:
    """SQL giving one row per (keys…, group): n, n_eff, estimate, SE, CI, reliability and the gap.

    ``base`` and ``design`` are SELECT statements (see the module docstring). ``keys`` are the
    grouping columns besides ``group``; the native group of a cell is the row with ``is_native``.
    With ``moments``, ``base`` holds moments already (the columns :data:`MOMENTS` yields, at a
    finer grouping), which are summed; moments add up, so the result is the same.
    """
    k = ", ".join(quote_ident(c) for c in keys)
    kg = f"{k}, \"group\"" if k else '"group"'
    grp_keys = f"{k}, \"group\", is_native" if k else '"group", is_native'
    cv = f"CASE WHEN r.est <> 0 THEN {_sd('v.v')} / abs(r.est) END"
    suppress = (f"(n < {rule.min_n} OR sw * sw / nullif(sw2, 0) < {rule.min_n_eff!r} "
                f"OR coalesce(nonresp, 0) > {rule.suppress_nonresponse!r} OR est IS NULL)")
    checks = [
        (f"r.n < {rule.min_n}", f"n<{rule.min_n}"),
        (f"r.sw * r.sw / nullif(r.sw2, 0) < {rule.min_n_eff!r}", f"n_eff<{rule.min_n_eff:g}"),
        (f"r.nonresp > {rule.suppress_nonresponse!r}", f"item_nonresponse>{rule.suppress_nonresponse:g}"),
        (f"r.n < {rule.flag_n}", f"n<{rule.flag_n}"),
        (f"{cv} > {rule.flag_cv!r}", f"cv>{rule.flag_cv:g}"),
        (f"2 * {Z95!r} * {cv} > {rule.flag_rel_ci!r}", f"rel_ci_width>{rule.flag_rel_ci:g}"),
        (f"r.nonresp > {rule.flag_nonresponse!r}", f"item_nonresponse>{rule.flag_nonresponse:g}"),
    ]
    flags = "concat_ws('; ', " + ", ".join(f"CASE WHEN {c} THEN '{label}' END" for c, label in checks) + ")"
    low = " OR ".join(c for c, _ in checks[3:])
    se = _sd("v")
    cv_out = f"CASE WHEN est <> 0 THEN {se} / abs(est) END"
    shown = "CASE WHEN NOT sup THEN {} END"
    return f"""
WITH design AS MATERIALIZED ({design}),
m AS MATERIALIZED ({moments_sql(base, grp_keys) if moments else MOMENTS.format(keys=grp_keys, base=base)}),
r AS MATERIALIZED (
  SELECT *, swy / nullif(sw, 0) AS est, n_miss / (n + n_miss) AS nonresp,
         row_number() OVER () AS cell, dense_rank() OVER (ORDER BY {k or "1"}) AS parent
  FROM (SELECT {grp_keys}, sum(n)::BIGINT AS n, sum(n_miss)::BIGINT AS n_miss, fsum(sw) AS sw, fsum(sw2) AS sw2,
               fsum(swy) AS swy, bool_and(all_design) AS all_design, bool_or(any_design) AS any_design
        FROM m GROUP BY {grp_keys})),
zs AS MATERIALIZED (
  SELECT r.cell, r.parent, r.is_native, m.stratum_id, m.psu,
         (coalesce(m.swy, 0) - r.est * coalesce(m.sw, 0)) / r.sw AS z,
         CASE WHEN m.psu IS NULL
              THEN (coalesce(m.sw2y2, 0) - 2 * r.est * coalesce(m.sw2y, 0) + r.est * r.est * coalesce(m.sw2, 0))
                   / (r.sw * r.sw)
              ELSE pow((coalesce(m.swy, 0) - r.est * coalesce(m.sw, 0)) / r.sw, 2) END AS z2
  FROM m JOIN r USING ({grp_keys}) WHERE r.sw > 0),
zd AS (
  SELECT cell, stratum_id, fsum(z2) AS s2, fsum(z) AS s1 FROM (
    SELECT cell, stratum_id, z, z2 FROM zs WHERE NOT is_native
    UNION ALL
    SELECT g.cell, n.stratum_id, -n.z AS z, n.z2 FROM zs n
    JOIN (SELECT cell, parent FROM r WHERE NOT is_native) g USING (parent) WHERE n.is_native
    UNION ALL
    SELECT g.cell, g.stratum_id, 0.0 AS z, -2 * g.z * n.z AS z2 FROM zs g
    JOIN zs n ON g.parent = n.parent AND g.stratum_id = n.stratum_id AND g.psu = n.psu
    WHERE NOT g.is_native AND n.is_native) u
  GROUP BY cell, stratum_id),
v AS ({_variance("(SELECT cell, stratum_id, fsum(z2) AS s2, fsum(z) AS s1 FROM zs GROUP BY cell, stratum_id)")}),
vd AS ({_variance("zd")}),
out AS (
  SELECT r.*, v.v, vd.v AS vd, nat.est AS nat_est, nat.sup AS nat_sup, {flags} AS flags_all, ({low}) AS low
  FROM (SELECT *, {suppress} AS sup FROM r) r
  LEFT JOIN v USING (cell) LEFT JOIN vd USING (cell)
  LEFT JOIN (SELECT parent, est, {suppress} AS sup FROM r WHERE is_native) nat USING (parent))
SELECT {k + ", " if k else ""}"group", n, sw * sw / nullif(sw2, 0) AS n_eff, nonresp AS item_nonresponse,
       {shown.format("est")} AS estimate, {shown.format(se)} AS se,
       {shown.format(f"est - {Z95!r} * {se}")} AS ci_low, {shown.format(f"est + {Z95!r} * {se}")} AS ci_high,
       {shown.format(cv_out)} AS cv,
       CASE WHEN sup THEN 'suppressed' WHEN low THEN 'low' ELSE 'ok' END AS reliability, flags_all AS flags,
       CASE WHEN NOT sup AND NOT is_native AND NOT nat_sup THEN est - nat_est END AS gap,
       CASE WHEN NOT sup AND NOT is_native AND NOT nat_sup THEN {_sd('vd')} END AS gap_se,
       CASE WHEN all_design THEN 'stratum/psu' WHEN any_design THEN 'mixed: stratum/psu where present, else '
            || 'respondents as PSUs' ELSE 'respondents as PSUs' END AS design
FROM out
ORDER BY {kg}"""
