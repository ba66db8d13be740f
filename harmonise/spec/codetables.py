"""Code tables under ``mappings/tables/``: data, not code.

``code_map`` tables recode source codes (country, language, education schemes);
``reference`` tables list valid target codes with attributes (countries,
languages with host languages).
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from harmonise.spec.source import Code, norm_code

EUROSTAT_COUNTRY = {"EL": "GR", "UK": "GB"}  # Eurostat's country codes (NUTS prefixes) that differ from ISO 3166-1


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CodeMap(Strict):
    table: str
    kind: Literal["code_map"]
    description: str
    source: str
    key_type: Literal["string", "integer"]
    target: str
    status: str | None = None
    map: dict[Code, Any]
    missing: dict[Code, str] = Field(default_factory=dict)
    labels: dict[Code, str] = Field(default_factory=dict)
    notes: dict[Code, str] = Field(default_factory=dict)

    def normalised_map(self) -> dict[Code, Any]:
        """The map with canonical codes (a copy; the table is immutable, so it is computed once)."""
        return dict(self._normalised[0])

    def normalised_missing(self) -> dict[Code, str]:
        return dict(self._normalised[1])

    @cached_property
    def _normalised(self) -> tuple[dict[Code, Any], dict[Code, str]]:
        return {norm_code(k): v for k, v in self.map.items()}, {norm_code(k): v for k, v in self.missing.items()}


def _row(row: dict[str, Any]) -> dict[str, Any]:
    """A reference row: free attributes, plus optional ``aliases``, the other names sources give it."""
    aliases = row.get("aliases", [])
    if not isinstance(aliases, list) or not all(isinstance(a, str) and a.strip() for a in aliases):
        raise ValueError(f"aliases must be a list of names, e.g. aliases: [\"Turkey\"]; got {aliases!r}")
    return row


Row = Annotated[dict[str, Any], AfterValidator(_row)]


class Reference(Strict):
    table: str
    kind: Literal["reference"]
    description: str
    key: str
    status: str | None = None
    rows: list[Row]
    host_languages: dict[str, list[str]] | None = None

    def keys(self) -> list[str]:
        return [str(r[self.key]) for r in self.rows]


Table = CodeMap | Reference


class TableSet:
    """All loaded tables by name, with the country/language lookups the engine needs."""

    def __init__(self, tables: dict[str, Table], cities: Reference | None = None) -> None:
        self.tables = tables
        self.cities = cities
        self._names: dict[str, dict[str, tuple[str, ...]]] = {}

    def code_map(self, name: str) -> CodeMap | None:
        t = self.tables.get(name)
        return t if isinstance(t, CodeMap) else None

    def lookups(self) -> dict[str, dict[Code, Any]]:
        """Every code_map as a plain code → value dict (for ``lookup()`` in expressions); read-only."""
        return self._lookups

    @cached_property
    def _lookups(self) -> dict[str, dict[Code, Any]]:
        out = {n: t.normalised_map() for n, t in self.tables.items() if isinstance(t, CodeMap)}
        if self.cities is not None:
            out["city_region_proxy"] = {
                str(r["region_proxy"]["nuts"]): str(r["code"]) for r in self.cities.rows
                if isinstance(r.get("region_proxy"), dict) and r["region_proxy"].get("nuts")}
        return out

    def _reference(self, name: str) -> Reference | None:
        t = self.tables.get(name)
        return t if isinstance(t, Reference) else None

    @cached_property
    def country_codes(self) -> frozenset[str]:
        ref = self._reference("countries")
        return frozenset(ref.keys()) if ref else frozenset()

    @cached_property
    def language_codes(self) -> frozenset[str]:
        ref = self._reference("languages")
        return frozenset(ref.keys()) if ref else frozenset()

    def eu_groups(self) -> tuple[frozenset[str], frozenset[str]]:
        """(codes grouping as EU27_2020, codes grouping as non-EU)."""
        return self._eu_groups

    @cached_property
    def _eu_groups(self) -> tuple[frozenset[str], frozenset[str]]:
        ref = self._reference("countries")
        if ref is None:
            return frozenset(), frozenset()
        eu = frozenset(str(r["code"]) for r in ref.rows if r.get("eu27_2020_group") == "eu")
        non = frozenset(str(r["code"]) for r in ref.rows if r.get("eu27_2020_group") == "non_eu")
        return eu, non

    def names(self, reference: str) -> dict[str, tuple[str, ...]]:
        """Code → its names in a reference table (``name``, the parts of a ``; ``-separated name, ``aliases``)."""
        if reference not in self._names:  # the rows are immutable: computed once per table set
            self._names[reference] = self._names_of(reference)
        return self._names[reference]

    def _names_of(self, reference: str) -> dict[str, tuple[str, ...]]:
        ref = self._reference(reference)
        if ref is None:
            return {}
        return {str(r[ref.key]): (str(r.get("name", "")), *str(r.get("name", "")).split("; "),
                                   *(str(a) for a in r.get("aliases", [])))
                for r in ref.rows}

    @cached_property
    def city_codes(self) -> frozenset[str]:
        return frozenset(self.cities.keys()) if self.cities else frozenset()


def table_files(root: Path) -> list[Path]:
    folder = root / "mappings" / "tables"
    return sorted(folder.glob("*.yaml")) if folder.is_dir() else []
