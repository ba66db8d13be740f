"""What the user says of a file that the file itself lacks: the country of a one-country file (``--country``)
and the city of a one-city file of a city survey (``--city``), for files released without the variable.

Out of :mod:`harmonise.discover` since the thirtieth session, when ``--city`` joined ``--country``. A value given
is never a guess: the file gets the variable the rule reads, holding the source code that maps to the value, so
that every rule reading it (the region and the country read from the city, the ids, the PSU and stratum
prefixes) works as for a complete file.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeGuard

from harmonise.readers.files import SourceFile
from harmonise.spec.crosswalk import Crosswalk, Wave
from harmonise.spec.project import Project
from harmonise.spec.resolve import TargetPlan, resolve_wave
from harmonise.spec.source import find_variable

COUNTRY_TARGET = "country"  # the target `--country` supplies
CITY_TARGET = "city"  # the target `--city` supplies
SUPPLIED = (CITY_TARGET, COUNTRY_TARGET)  # in this order: a city read from the variable the country is read from
# (LOCALMULTIDEM) supplies both


def supply(supplied: Mapping[str, str], cw: Crosswalk, wave: Wave, project: Project, src: SourceFile) -> list[str]:
    """Give ``src`` the variables ``supplied`` (target → value) stands for: for each target whose rule reads a
    variable the file lacks, a column holding the source code that maps to the value. Returns the targets a
    column was added for (none when the file had them already)."""
    if not supplied or project.schema is None:
        return []
    added = []
    plan = resolve_wave(cw, wave, project.schema, project.tables)
    for target in SUPPLIED:
        value = supplied.get(target)
        tp = plan.targets.get(target)
        if value is None or not read_from_variable(tp) or find_variable(src.meta.variables, tp.source or ""):
            continue
        assert tp.source
        codes = [c for c, v in tp.values.items() if v == value]
        if codes:
            src.supply(tp.source, codes[0], f"supplied by --{target} {value}")
            added.append(target)
    return added


def read_from_variable(tp: TargetPlan | None) -> TypeGuard[TargetPlan]:
    """Whether a target's rule maps the codes of one source variable (what ``--country``/``--city`` stand in for)."""
    return tp is not None and tp.kind in ("map", "table") and bool(tp.source)


def country_apart(supplied: Mapping[str, str], cw: Crosswalk, wave: Wave, project: Project,
                  src: SourceFile | None) -> str | None:
    """Why ``--country`` cannot stand in for the country rule's source variable the file lacks: several of the
    variable's codes map to the country, and another rule reading the variable tells them apart (LOCALMULTIDEM's
    country is read from its city: ES is Barcelona or Madrid) — else None (any of the codes serves alike)."""
    value = supplied.get(COUNTRY_TARGET)
    if value is None or project.schema is None or src is None:
        return None
    plan = resolve_wave(cw, wave, project.schema, project.tables)
    tp = plan.targets.get(COUNTRY_TARGET)
    if not read_from_variable(tp) or find_variable(src.meta.variables, tp.source or ""):
        return None
    codes = [c for c, v in tp.values.items() if v == value]
    if len(codes) < 2:
        return None
    told = sorted(t for t, other in plan.targets.items() if t != COUNTRY_TARGET and other.source == tp.source
                  and other.kind in ("map", "table") and len({repr(other.values.get(c)) for c in codes}) > 1)
    if not told:
        return None
    return (f"{len(codes)} codes of {tp.source} ({', '.join(map(str, codes))}), which "
            f"{' and '.join(told)} {'tells' if len(told) == 1 else 'tell'} apart")


@dataclass(frozen=True)
class City:
    """A city a wave's city rule maps to: its code in mappings/cities.yaml, the source code the file holds for it,
    and the names it goes by (the source code, its value label in the declared codebook, the code, its name in
    mappings/cities.yaml)."""

    code: str
    source_code: object
    names: tuple[str, ...]
    country: str | None  # its country in mappings/cities.yaml

    @property
    def said(self) -> str:
        """The city as a message lists it: its name (the declared label), and the code the file holds."""
        return f"{self.names[1]} ({self.names[0]})" if self.names[1] != self.names[0] else self.names[0]


@dataclass(frozen=True)
class WaveCities:
    """The cities a wave's city rule maps to, in its order, and the variable it reads them from."""

    variable: str
    cities: list[City]


def wave_cities(cw: Crosswalk, wave: Wave, project: Project) -> WaveCities | None:
    """The cities ``wave``'s city rule maps to; None when its city is not read from one variable (a
    country-sampled survey's city comes from its region, or is not asked)."""
    if project.schema is None:
        return None
    tp = resolve_wave(cw, wave, project.schema, project.tables).targets.get(CITY_TARGET)
    if not read_from_variable(tp):
        return None
    assert tp.source
    labels = {}
    declared = project.declared_meta(cw.survey, wave.wave)
    if declared is not None and (vm := find_variable(declared.variables, tp.source)) is not None:
        labels = {_text(k): str(v) for k, v in vm.labels.items()}
    rows = project.tables.cities.rows if project.tables.cities is not None else []
    # 'Bruxelles/Brussel': each language's name
    names = {str(r["code"]): tuple(str(r.get("name", "")).split("/")) for r in rows}
    countries = {str(r["code"]): str(r["country"]) for r in rows if r.get("country")}
    cities, seen = [], set()
    for source_code, code in tp.values.items():
        if not isinstance(code, str) or code in seen:
            continue
        seen.add(code)
        label = labels.get(_text(source_code), _text(source_code))
        cities.append(City(code, source_code, (_text(source_code), label, code, *names.get(code, ())),
                           countries.get(code)))
    return WaveCities(tp.source, cities)


def _text(code: object) -> str:
    """A code as text, an integral number without decimals (a label keyed 1.0 is code 1's)."""
    return str(int(code)) if isinstance(code, float) and code.is_integer() else str(code)


def _folded(text: str) -> str:
    """``text`` compared without case or accents ('zurich' names Zürich)."""
    return "".join(c for c in unicodedata.normalize("NFKD", text.strip()) if not unicodedata.combining(c)).casefold()


def named(text: str, cities: list[City]) -> City | None:
    """The city of ``cities`` that ``text`` names by any of its names, None when none (or several) do."""
    want = _folded(text)
    found = {c.code: c for c in cities if any(_folded(n) == want for n in c.names if n)}
    return next(iter(found.values())) if len(found) == 1 else None


def cities_said(cities: list[City], limit: int = 20) -> str:
    """The cities as a message lists them (at most ``limit``, then how many more)."""
    shown = ", ".join(c.said for c in cities[:limit])
    return shown + (f" and {len(cities) - limit} more" if len(cities) > limit else "")
