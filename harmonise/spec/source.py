"""What is known about a source file's variables, from the file or its declared codebook.

Both the reader (pyreadstat metadata) and the declared source codebooks under
``surveys/`` produce a :class:`SourceMeta`, so every check against the source
runs the same way with or without the licensed data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, TypedDict

Code = int | float | str
StorageType = Literal["numeric", "string"]


class MissingDeclaration(TypedDict, total=False):
    """A variable's user-missing declaration as JSON: discrete codes, [low, high] ranges, Stata letters."""

    values: list[Code]
    ranges: list[list[float]]
    extended: dict[str, str]


def norm_code(code: object) -> Code:
    """Canonical form of a source code: integral floats become ints, strings are stripped on the right."""
    if isinstance(code, bool):
        return int(code)
    if isinstance(code, float) and code.is_integer():
        return int(code)
    if isinstance(code, str):
        return code.rstrip()
    return code  # type: ignore[return-value]


@dataclass
class VarMeta:
    """One source variable: label, storage type, value labels and missing declarations."""

    name: str
    label: str = ""
    type: StorageType = "numeric"
    width: int | None = None
    format: str | None = None
    measure: str | None = None
    labels: dict[Code, str] = field(default_factory=dict)
    missing_values: list[Code] = field(default_factory=list)
    missing_ranges: list[tuple[float, float]] = field(default_factory=list)
    extended: dict[str, str] = field(default_factory=dict)

    def declared_missing(self, code: Code) -> bool:
        """True when the file declares ``code`` user-missing (discrete value or range)."""
        if code in self.missing_values:
            return True
        if isinstance(code, (int, float)):
            return any(lo <= code <= hi for lo, hi in self.missing_ranges)
        return False

    def missing_declaration(self) -> MissingDeclaration:
        out: MissingDeclaration = {}
        if self.missing_values:
            out["values"] = sorted(self.missing_values, key=str)
        if self.missing_ranges:
            out["ranges"] = [list(r) for r in self.missing_ranges]
        if self.extended:
            out["extended"] = dict(sorted(self.extended.items()))
        return out


def find_variable(variables: dict[str, VarMeta], name: str) -> VarMeta | None:
    """``variables[name]``, else the unique variable whose name differs only in case (a file whose
    names are upper-case), else None."""
    if name in variables:
        return variables[name]
    folded = name.lower()
    lower = [v for k, v in variables.items() if k.lower() == folded]
    return lower[0] if len(lower) == 1 else None


@dataclass
class SourceMeta:
    """All variables of one source file (or its declared codebook)."""

    origin: str
    variables: dict[str, VarMeta]
    format: str | None = None
    encoding: str | None = None
    rows: int | None = None
    file_label: str | None = None
    header: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> VarMeta | None:
        """Case-sensitive lookup, falling back to a unique case-insensitive match."""
        return find_variable(self.variables, name)
