"""Crosswalk models: one file per survey mapping every wave onto the schema.

A crosswalk declares, per target, one *rule* of exactly one kind:

- ``map``      source codes → target codes (by code, never by label)
- ``range``    numeric source values kept as they are within [lo, hi] (optionally ``transform``)
- ``table``    a code table from ``mappings/tables/`` (plus per-variable ``map``/``missing`` additions)
- ``expr``     a restricted expression over source variables (see harmonise.spec.expr)
- ``constant`` one value for every respondent of the wave
- ``not_asked`` the survey does not measure it (the value is the one-line reason)

Survey-level ``missing`` defaults map source missing codes onto the missing-reason
taxonomy; per-variable ``missing`` entries refine them. Waves override single
fields of a rule (``overrides: {country_of_birth: {source: cntbrthd}}``; a ``map`` on a
table rule keeps the table); see :func:`merge_override`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from harmonise.spec.schema import Quality

Code = int | float | str
TargetValue = bool | int | float | str
RULE_KINDS = ("map", "range", "table", "expr", "constant", "not_asked")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Rule(Strict):
    """How one target is obtained in one wave."""

    source: str | None = Field(None, description="Source variable name.")
    map: dict[Code, TargetValue] | None = Field(None, description="Source code → target code.")
    missing: dict[Code, str] | None = Field(None, description="Source code → missing reason (refines survey defaults).")
    range: tuple[float, float] | None = Field(None, description="Valid source values kept as values.")
    transform: str | None = Field(None, description="Expression of `x` applied to in-range values.")
    table: str | None = Field(None, description="Code table name under mappings/tables/.")
    expr: str | None = Field(None, description="Restricted expression over source variables.")
    constant: TargetValue | None = Field(None, description="One value for every respondent.")
    not_asked: str | None = Field(None, description="Why the survey does not measure this target.")
    quality: Quality | None = Field(None, description="How exactly the rule measures the target: exact, recoded, "
                                   "approximate or proxy.")
    notes: str | None = Field(None, description="Why the rule is as it is (shown in lineage and codebooks).")
    alternatives: list[dict[str, Any]] | None = Field(
        None, description="Rules to use, in order, when a file lacks a variable this rule reads (another edition's "
                          "or round's names): each is written like a wave override of this rule, and one without a "
                          "`quality` has the rule's; the first whose variables the file holds is used, and "
                          "`lineage` records which.")

    @property
    def kind(self) -> str:
        for k in ("not_asked", "expr", "constant", "table", "map", "range"):
            if getattr(self, k) is not None:
                return k
        return "none"


class MissingDefaults(Strict):
    """Survey-level missing-code conventions.

    ``codes`` apply to a source code only when the source declares it missing
    or labels it and it is outside the variable's valid codes; an unlabelled,
    undeclared code is never turned into a missing reason by a default.
    """

    system: str = Field("not_available", description="Reason for system-missing values (SPSS sysmis, Stata '.').")
    codes: dict[str, list[Code]] = Field(default_factory=dict, description="Missing reason → source codes.")
    extended: dict[str, str] = Field(default_factory=dict, description="Stata extended missing letter (a-z) → reason.")


class Wave(Strict):
    """One wave (round, edition) of the survey: how its files are recognised and how its rules differ."""

    wave: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,16}$", description="The wave's id, as researchers query it.")
    year: int = Field(ge=1980, le=2035, description="Year fieldwork started.")
    files: list[str] = Field(min_length=1, description="File-name patterns (fnmatch, case-insensitive, no folders); "
                                                       "used when no `content` rule recognises a file.")
    content: dict[str, Code | list[Code]] | None = Field(
        None, description="Variables whose values identify the wave's files, e.g. {essround: 8}: a file whose every "
                          "row holds one of the given values of each variable belongs to this wave, whatever its name. "
                          "The wave is recognised from a file's first 100 rows; a longer file's other rows are "
                          "checked as it is harmonised. A file whose rows are several waves' by a variable that "
                          "alone tells a survey's waves apart (a cumulative file: essround) is harmonised wave by "
                          "wave, each wave's rows with its rules (a read-by-wave note); given --survey/--wave, a "
                          "row of another wave fails the command (a mixed-waves error naming the row).")
    codebook: str | None = Field(None, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*\.ya?ml$",
                                 description="Declared source codebook: a file name in surveys/<survey>/ (no folders).")
    encoding: str | None = Field(None, description="Text encoding of the wave's files when they do not record one.")
    overrides: dict[str, dict[str, Any] | None] = Field(
        default_factory=dict, description="Target → fields that replace the base rule's in this wave (a field set "
                                          "to null is dropped; not_asked, expr or constant replace the whole rule).")
    notes: str | None = Field(None, description="What distinguishes the wave's files.")


class Period(Strict):
    """Overrides shared by several waves, written once (e.g. the rules rounds 1-4 have in common)."""

    waves: list[str] = Field(min_length=1, description="Ids of the waves the overrides apply to.")
    overrides: dict[str, dict[str, Any] | None] = Field(
        default_factory=dict, description="Target → fields that replace the base rule's in these waves, applied "
                                          "before a wave's own overrides (as a wave's overrides).")
    notes: str | None = Field(None, description="What the waves have in common.")


class Crosswalk(Strict):
    """A whole crosswalk file."""

    schema_ref: str | None = Field(None, alias="$schema", description="Editor schema of crosswalk files.")
    survey: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="Survey code (a code of the schema's survey).")
    title: str = Field(description="The survey's name.")
    respondent_key: list[str] | None = Field(None, description="Source variables that identify a respondent.")
    missing: MissingDefaults = Field(default_factory=MissingDefaults,
                                     description="Survey-wide missing-code conventions.")
    waves: list[Wave] = Field(min_length=1, description="Every wave the crosswalk maps.")
    periods: list[Period] = Field(default_factory=list,
                                  description="Overrides shared by several waves, applied in order after the base "
                                              "rules and before each wave's own overrides.")
    targets: dict[str, Rule] = Field(description="Base rule of every schema target (waves override them).")
    design: dict[str, str] | None = Field(
        None, description="Target → expression over a sample-design file's variables (e.g. ESS SDDF files: "
                          "psu, stratum): `build --design FILE` joins them to the wave's respondents by "
                          "respondent_id, computed by the wave's own rule.")
    notes: str | None = Field(None, description="Anything a mapping author should know.")

    @field_validator("waves")
    @classmethod
    def _unique_waves(cls, waves: list[Wave]) -> list[Wave]:
        ids = [w.wave for w in waves]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"wave(s) declared twice: {dup}")
        return waves

    def wave(self, wave_id: str) -> Wave:
        for w in self.waves:
            if w.wave == wave_id:
                return w
        raise KeyError(wave_id)


CODED_KINDS = ("map", "range", "table")  # the kinds read from one `source`: an override merges into them


def merge_override(base: Rule | None, override: dict[str, Any] | None) -> dict[str, Any]:
    """Apply a wave override to a base rule (both as plain dicts; docs/crosswalk.md, "Waves and overrides").

    An override that sets ``not_asked``, ``expr`` or ``constant``, or sets ``map``, ``range`` or ``table``
    where the base rule has none of these, replaces the base rule (keeping its ``notes``). Any other override
    replaces just the fields it sets: a ``map`` on a table rule keeps the table (the map adds to or overrides
    single codes), and a field set to null (``table: null``) is dropped. An override that leaves two kinds
    (a ``range`` on a map rule) fails the rule checks, saying which field to set to null.
    """
    data = base.model_dump(exclude_none=True) if base is not None else {}
    if override is None:
        return data
    new_kinds = {k for k, v in override.items() if k in RULE_KINDS and v is not None}
    if new_kinds & {"not_asked", "expr", "constant"} or (new_kinds and data and not any(k in data for k in CODED_KINDS)):
        data = {k: v for k, v in data.items() if k in ("notes",)}
    data.update(override)
    return {k: v for k, v in data.items() if v is not None}
