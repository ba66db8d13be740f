"""Declared source codebooks (``surveys/<survey>/codebook_<wave>.yaml``).

A codebook mirrors a distributed file's metadata — names, labels, storage
types, value labels and missing declarations exactly as the file declares them
— so crosswalks can be checked and fixtures generated without the licensed data.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from harmonise.spec.source import Code, SourceMeta, VarMeta, norm_code


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MissingDecl(Strict):
    """SPSS: up to three discrete values, or one range plus at most one value. Stata: extended letters."""

    values: list[Code] | None = None
    range: tuple[float, float] | None = None
    extended: dict[str, str] | None = None

    @model_validator(mode="after")
    def _spss_rules(self) -> MissingDecl:
        n = len(self.values or [])
        if self.range is None and n > 3:
            raise ValueError("SPSS allows at most 3 discrete missing values")
        if self.range is not None and n > 1:
            raise ValueError("SPSS allows one missing range plus at most one discrete value")
        if self.range is not None and self.range[0] > self.range[1]:
            raise ValueError("missing range must be [low, high]")
        for k in self.extended or {}:
            if len(k) != 1 or not ("a" <= k <= "z"):
                raise ValueError(f"extended missing keys are single letters a-z, got {k!r}")
        return self


class CodebookVariable(Strict):
    name: str = Field(min_length=1, max_length=64)
    label: str = ""
    type: Literal["numeric", "string"]
    width: int | None = Field(None, ge=1, le=32767)
    format: str | None = None
    measure: Literal["nominal", "ordinal", "scale"] | None = None
    labels: dict[Code, str] = Field(default_factory=dict)
    missing: MissingDecl | None = None
    notes: str | None = None  # e.g. how the files of a round differ for this variable
    evidence: Literal["seen", "recalled", "modelled"] | None = None

    @model_validator(mode="after")
    def _typed(self) -> CodebookVariable:
        if self.type == "string" and self.width is None:
            raise ValueError(f"string variable {self.name} needs a width")
        if self.type == "numeric" and self.width is not None:
            raise ValueError(f"numeric variable {self.name} takes no width")
        want = str if self.type == "string" else (int, float)
        bad = [k for k in self.labels if not isinstance(k, want) or isinstance(k, bool)]
        if bad:
            raise ValueError(f"value-label codes of {self.type} variable {self.name} must be "
                             f"{'quoted text' if self.type == 'string' else 'numbers'}: {bad[:3]}")
        return self

    def to_meta(self) -> VarMeta:
        m = self.missing
        values = [norm_code(v) for v in (m.values or [])] if m else []
        ranges = [tuple(m.range)] if m and m.range else []  # type: ignore[list-item]
        return VarMeta(
            name=self.name, label=self.label, type=self.type, width=self.width, format=self.format,
            measure=self.measure, labels={norm_code(k): v for k, v in self.labels.items()},
            missing_values=values, missing_ranges=ranges,  # type: ignore[arg-type]
            extended=dict(m.extended or {}) if m else {},
        )


class SourceCodebook(Strict):
    survey: str
    wave: str
    file: str
    format: Literal["sav", "zsav", "por", "dta"]
    encoding: str | None = None
    names: Literal["seen", "modelled"]
    rows: int | None = None
    notes: str | None = None
    variables: list[CodebookVariable] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> SourceCodebook:
        names = [v.name for v in self.variables]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"variables declared twice: {dup}")
        return self

    def to_meta(self, origin: str) -> SourceMeta:
        return SourceMeta(origin=origin, variables={v.name: v.to_meta() for v in self.variables},
                          format=self.format, encoding=self.encoding, rows=self.rows)


def codebook_dict(meta: SourceMeta, *, survey: str, wave: str, file: str, names: str = "seen",
                  variables: list[str] | None = None, notes: str | None = None,
                  evidence: str = "seen") -> dict[str, object]:
    """A declared-codebook mapping (ready for YAML) from source metadata, optionally a subset of variables."""
    chosen = [n for n in (variables or list(meta.variables)) if n in meta.variables]
    out_vars = []
    for name in chosen:
        vm = meta.variables[name]
        entry: dict[str, object] = {"name": vm.name, "label": vm.label, "type": vm.type}
        if vm.type == "string":
            entry["width"] = vm.width or 1
        if vm.format:
            entry["format"] = vm.format
        if vm.measure in ("nominal", "ordinal", "scale"):
            entry["measure"] = vm.measure
        if vm.labels:
            entry["labels"] = {k: v for k, v in vm.labels.items()}
        miss: dict[str, object] = {}
        if vm.missing_ranges:
            lo, hi = vm.missing_ranges[0]
            miss["range"] = [norm_code(lo), norm_code(hi)]
        if vm.missing_values:
            miss["values"] = list(vm.missing_values)
        if vm.extended:
            miss["extended"] = dict(vm.extended)
        if miss:
            entry["missing"] = miss
        entry["evidence"] = evidence
        out_vars.append(entry)
    doc: dict[str, object] = {"survey": survey, "wave": wave, "file": file, "format": meta.format or "sav"}
    if meta.encoding:
        doc["encoding"] = meta.encoding
    doc["names"] = names
    if meta.rows is not None:
        doc["rows"] = meta.rows
    if notes:
        doc["notes"] = notes
    doc["variables"] = out_vars
    return doc
