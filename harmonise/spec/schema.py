"""The target schema (``mappings/schema.yaml``) as typed models.

Everything downstream — the DuckDB table, the pandera schema, codebooks —
reads these models; the schema is never written a second time.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

TargetType = Literal["category", "boolean", "integer", "number", "string", "country", "language", "city"]
Quality = Literal["exact", "recoded", "approximate", "proxy"]
Measure = Literal["nominal", "ordinal", "scale"]
UNMAPPED = "__unmapped__"
BUILD_COLUMNS = ("source_row", "source_file")  # columns of respondents beside the schema's (store.respondents)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Derivation(Strict):
    """How a derived target is computed from other targets."""

    expr: str = Field(description="Restricted expression over target variables (see docs/expressions.md).")


class MissingReason(Strict):
    label: str
    definition: str


class Variable(Strict):
    """One target variable of the common schema."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label: str
    group: str
    type: TargetType
    definition: str
    codes: dict[str, str] | None = None
    range: tuple[float, float] | None = None
    pattern: str | None = None
    unit: str | None = None
    required: bool = False
    automatic: bool = False
    derived: bool = False
    derive: Derivation | None = None
    measure: Measure | None = Field(None, description="Measurement level for SPSS/Stata exports when not the "
                                    "type's default (nominal for codes and text, scale for numbers); e.g. ordinal.")

    @model_validator(mode="after")
    def _consistent(self) -> Variable:
        if self.type == "category" and not self.codes:
            raise ValueError(f"category variable {self.name} needs codes")
        if self.type != "category" and self.codes:
            raise ValueError(f"only category variables take codes ({self.name} is {self.type})")
        if self.range and self.type not in ("integer", "number"):
            raise ValueError(f"only integer/number variables take a range ({self.name})")
        if self.derived != (self.derive is not None):
            raise ValueError(f"{self.name}: 'derived: true' and 'derive' go together")
        return self

    @property
    def measurement(self) -> Measure:
        """The declared measurement level, else nominal for codes and text and scale for numbers."""
        return self.measure or ("scale" if self.type in ("integer", "number") else "nominal")

    @property
    def has_missing_column(self) -> bool:
        return not self.required

    @property
    def missing_column(self) -> str:
        return f"{self.name}_missing"


class Consistency(Strict):
    """A statement each respondent's harmonised values should make true (``age`` and ``birth_year`` agree): judged
    after harmonising, on the rows where it is true or false (not unknown for a missing value); the rows that make it
    false are said, and stored as they are."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    expr: str = Field(description="Restricted expression over target variables giving true or false "
                      "(see docs/expressions.md).")
    says: str = Field(description="What a row that makes the expression false holds, in a few words "
                      "(e.g. 'age and year of birth more than two years apart').")


class TargetSchema(Strict):
    """The whole target schema."""

    schema_: str = Field(alias="schema")
    version: int
    description: str
    params: dict[str, float] = Field(default_factory=dict)
    missing_reasons: dict[str, MissingReason]
    groups: dict[str, str]
    variables: list[Variable]
    consistency: list[Consistency] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> TargetSchema:
        names = [v.name for v in self.variables]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"duplicate variable names: {sorted(dup)}")
        checks = [c.name for c in self.consistency]
        dup = {n for n in checks if checks.count(n) > 1}
        if dup:
            raise ValueError(f"duplicate consistency names: {sorted(dup)}")
        owner = {c: "a column every build adds" for c in BUILD_COLUMNS}
        for v in self.variables:
            cols = [(v.name, f"variable {v.name}")]
            if v.has_missing_column:
                cols.append((v.missing_column, f"the missing-reason column of {v.name}"))
            for col, what in cols:
                if col in owner:
                    raise ValueError(f"column {col!r} of the respondents table would be both {owner[col]} and {what}; "
                                     "rename the variable")
                owner[col] = what
        return self

    def variable(self, name: str) -> Variable:
        for v in self.variables:
            if v.name == name:
                return v
        raise KeyError(name)

    @property
    def names(self) -> list[str]:
        return [v.name for v in self.variables]

    @property
    def reasons(self) -> list[str]:
        return list(self.missing_reasons)
