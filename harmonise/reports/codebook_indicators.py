"""The indicator pages of a codebook: definition, population, weight and reliability rule of each indicator.

Read from the declarations (``mappings/indicators.yaml`` through
:func:`harmonise.reports.indicators.load_definitions`) or, for a codebook of a built database,
from its ``indicator_definitions`` table and the rule stored with its ``indicators``. The pages
say what the declarations say; how estimates are computed is in docs/indicators.md.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harmonise.reports.estimate import Rule
from harmonise.reports.indicators import Definition

if TYPE_CHECKING:
    from harmonise.spec.schema import TargetSchema

FALLBACK = {"weight_design": "weight"}  # a design weight applies where a survey-wave has one
DEFAULT_WEIGHT = "weight"  # every indicator uses the analysis weight unless --weight says otherwise


@dataclass(frozen=True)
class IndicatorPage:
    """An indicator's definition (as compiled and stored) and its weight described from the schema."""

    d: Definition
    weight_text: str

    @property
    def name(self) -> str:
        return self.d.name

    @property
    def estimate_text(self) -> str:
        what = "the weighted share of respondents for whom the outcome holds" if self.d.unit == "share" else \
            "the weighted mean of the outcome"
        return f"{what}, among respondents of the population whose outcome is known"


def weight_text(weight: str, schema: TargetSchema) -> str:
    """What a declared weight is, from the schema's own label and definition of the weight variable."""
    try:
        v = schema.variable(weight)
    except KeyError:
        return weight
    text = f"{weight} ({v.label}: {v.definition.rstrip('.')})"
    if weight in FALLBACK:
        text += f", where a survey-wave has one; elsewhere {FALLBACK[weight]}"
    if weight == DEFAULT_WEIGHT:
        text += " (the default for every indicator; `harmonise indicators --weight weight_design` uses the design " \
                "weight where a survey-wave has one)"
    return text


def rule_text(rule: Rule) -> str:
    """The suppression and reliability rule in words."""
    return (f"Suppressed (no estimate) when the unweighted n is below {rule.min_n}, the effective n below "
            f"{rule.min_n_eff:g} or item non-response above {rule.suppress_nonresponse:.0%}; flagged low "
            f"reliability when n is below {rule.flag_n}, the coefficient of variation above {rule.flag_cv:g}, the "
            f"95% interval wider than {rule.flag_rel_ci:.0%} of the estimate, item non-response above "
            f"{rule.flag_nonresponse:.0%} or fewer than {rule.flag_df} design degrees of freedom. These are the "
            "defaults; `harmonise indicators` options change them and "
            "every result records the rule in force.")


def declared_indicators(root: Path, schema: TargetSchema) -> list[IndicatorPage]:
    """The indicators ``mappings/indicators.yaml`` declares (none when the project has no such file)."""
    from harmonise.reports.indicators import load_definitions

    if not (root / "mappings" / "indicators.yaml").is_file():
        return []
    defs = load_definitions(root, schema)
    return [IndicatorPage(d, weight_text(DEFAULT_WEIGHT, schema)) for d in defs.indicators.values()]


def stored_indicators(db: Path, schema: TargetSchema) -> list[IndicatorPage] | None:
    """The indicators a built database defines (``indicator_definitions``); None when it has no such table."""
    from harmonise.store.connect import connect

    con = connect(db)
    try:
        if not con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'indicator_definitions'"
                           ).fetchone()[0]:  # type: ignore[index]
            return None
        fields = [f.name for f in dataclasses.fields(Definition)]
        rows = con.execute(f"SELECT {', '.join(fields)} FROM indicator_definitions ORDER BY position").fetchall()
    finally:
        con.close()
    defs = [Definition(**dict(zip(fields, row, strict=True))) for row in rows]
    return [IndicatorPage(d, weight_text(DEFAULT_WEIGHT, schema)) for d in defs]
