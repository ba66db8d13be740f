"""A file's rounds: content values as text (9, 9.0 and '9' are the same round), and the files whose rows are
several waves' (a cumulative file), read wave by wave by the variable that tells the waves apart (ESS
``essround``): the waves they hold, each with its rows, and the variables empty in a wave's rows."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import TYPE_CHECKING

from harmonise.errors import Issue
from harmonise.readers.files import EXT_SUFFIX, SourceFile, count_letters
from harmonise.samework import SameWork
from harmonise.spec.crosswalk import Crosswalk, Wave
from harmonise.spec.project import Project
from harmonise.spec.source import SourceMeta, VarMeta, find_variable

if TYPE_CHECKING:
    import pandas as pd


SPLIT_CHUNK = 500_000  # rows of a content variable read at once when a file is read wave by wave


FEW_ROWS = 0.05  # a wave with fewer of a file's rows than this share: said as a likely slip (a warning)


def split_waves(f: Path, src: SourceFile, crosswalks: list[Crosswalk],
                counted: tuple[str, dict[str | None, int]] | None = None
                ) -> tuple[list[tuple[Crosswalk, Wave, int]], Issue] | Issue | None:
    """The waves of a file whose rows are several waves' (a cumulative file), each with its rows, and the note
    saying so: by the content variable of a crosswalk whose waves are told apart by that one variable, read whole
    (``counted``: that variable and its rows per value, counted already: :func:`read_rounds`).
    An error when some rows' value is no wave's, or missing (their wave is unknown: no wave would store them);
    None when the rows are one wave's or no crosswalk's waves tell them apart."""
    for cw in crosswalks:
        vm = round_variable(cw, src.meta)
        if vm is None:
            continue
        told = [w for w in cw.waves if w.content]
        of: dict[str, list[Wave]] = {}
        for w in told:
            for allowed in (w.content or {}).values():
                for v in content_wanted(allowed):
                    of.setdefault(v, []).append(w)
        counts = counted[1] if counted is not None and counted[0] == vm.name else _counts(src, vm.name)
        if len({w.wave for c in counts if c is not None for w in of.get(c, [])}) < 2:
            continue
        unknown = {c: n for c, n in counts.items() if c is None or len(of.get(c, [])) != 1}
        rows: dict[str, int] = {}
        for c, n in counts.items():
            if c is not None and c not in unknown:
                rows[of[c][0].wave] = rows.get(of[c][0].wave, 0) + n
        waves = [(cw, w, rows[w.wave]) for w in cw.waves if w.wave in rows]
        listing = ", ".join(f"{w.wave} ({n:,} row{'s' if n != 1 else ''})" for _, w, n in waves)
        if unknown:
            what = "; ".join(f"{n:,} row(s) {'without a value' if u is None else f'of {vm.name} = {u}'}"
                             + ("" if u is None or not of.get(u) else " (several waves' value)")
                             for u, n in sorted(unknown.items(), key=lambda x: natural_key(x[0] or "")))
            return Issue(f"{f}: holds rows of {cw.survey} waves {listing} by its {vm.name}, and {what}: rows of no "
                         "known wave, which no wave would store", code="mixed-waves", survey=cw.survey,
                         hint=f"give those rows their wave's {vm.name}, or remove them; a round the crosswalk lacks "
                              "needs its wave first")
        total = sum(n for _, _, n in waves)
        few = [(w, n) for _, w, n in waves if n < FEW_ROWS * total]
        if few:  # a handful of rows of another round in a country file: more likely a slip than a cumulative file
            said = ", ".join(f"{n:,} row{'s' if n != 1 else ''} of wave {w.wave}" for w, n in few)
            return waves, Issue(
                f"{f}: holds rows of {cw.survey} waves {listing} by its {vm.name}: {said} among {total:,} is few for a "
                "wave's sample; each wave's rows are harmonised with that wave's rules", code="read-by-wave",
                severity="warning", survey=cw.survey, variable=vm.name,
                hint=f"if {vm.name} is wrong in those rows (a slip, not another round's respondents), give them their "
                     "wave's value; any other finding about those waves may follow from it")
        return waves, Issue(f"{f}: holds rows of {cw.survey} waves {listing} by its {vm.name}: each wave's rows are "
                            "harmonised with that wave's rules", code="read-by-wave", severity="note",
                            survey=cw.survey)
    return None


def round_variable(cw: Crosswalk, meta: SourceMeta) -> VarMeta | None:
    """The variable of a file that alone tells ``cw``'s waves apart (its waves' ``content`` names that one
    variable: ESS ``essround``), when the file has it; else None."""
    told = [w for w in cw.waves if w.content]
    names = {n.lower() for w in told for n in (w.content or {})}
    if len(names) != 1 or any(len(w.content or {}) != 1 for w in told):
        return None
    return find_variable(meta.variables, next(iter(names)))


def several_rounds(meta: SourceMeta, crosswalks: list[Crosswalk], counts: dict[str | None, int]
                   ) -> tuple[Crosswalk, str, dict[str | None, int]] | None:
    """A file of several waves' rows (a cumulative file) as `inspect` describes it: the first crosswalk whose round
    variable the file holds (:func:`round_variable`), that variable and ``counts``, its rows per value (None:
    missing; values of no wave too), when they are several values."""
    for cw in crosswalks:
        vm = round_variable(cw, meta)
        if vm is None:
            continue
        if len([v for v in counts if v is not None]) > 1:  # in the values' natural order, rows without one last
            return cw, vm.name, dict(sorted(counts.items(), key=lambda x: (x[0] is None, natural_key(x[0] or ""))))
        return None
    return None


def rounds_text(column: str, counts: dict[str | None, int]) -> str:
    """``essround = 8 (585 rows), 9 (1,755 rows); 2 row(s) without a value`` (values in their natural order)."""
    held = ", ".join(f"{v} ({n:,} row{'s' if n != 1 else ''})"
                     for v, n in sorted(((v, n) for v, n in counts.items() if v is not None), key=lambda x: natural_key(x[0])))
    return f"{column} = {held}" + (f"; {counts[None]:,} row(s) without a value" if counts.get(None) else "")


@dataclasses.dataclass(frozen=True)
class Letters:
    """The Stata letters a pass over a file counted: ``held`` (variable → letter → rows) for each of ``columns``."""

    columns: frozenset[str]
    held: dict[str, dict[str, int]]


def read_rounds(src: SourceFile, crosswalks: list[Crosswalk], project: Project, same: SameWork,
                supplied: dict[str, str]) -> tuple[str, dict[str | None, int], dict[str, set[str]], Letters | None] | None:
    """What discovery reads of a file to read wave by wave, in one pass over it: the rows per value of the variable
    that tells the first such crosswalk's waves apart (:func:`round_variable`; for :func:`split_waves`), and per
    variable that any of its waves' rules read, the waves in whose rows it holds a value (for
    :func:`empty_in_rows`), and of a Stata file the letters of those variables (how the file letters is judged from
    them, decision 97). The rows per round were read in a pass of their own, then the rounds' variables in
    another. None without such a crosswalk (or a schema to resolve its rules)."""
    if project.schema is None:
        return None
    for cw in crosswalks:
        vm = round_variable(cw, src.meta)
        if vm is None:
            continue
        told = [w for w in cw.waves if w.content]
        of = {v: w.wave for w in told for allowed in (w.content or {}).values() for v in content_wanted(allowed)}
        read: set[str] = set()
        for wave in told:  # which waves the file holds is known after this pass: every wave's variables are read
            plan = same.resolve(cw, wave, project, src.meta, supplied)
            read |= {m.name for n in plan.sources() if (m := find_variable(src.meta.variables, n)) is not None
                     and m.name not in src.virtual}
        todo = sorted(read - {vm.name})
        counts: dict[str | None, int] = {}
        filled: dict[str, set[str]] = {c: set() for c in todo}
        letters: dict[str, dict[str, int]] = {}
        for chunk in src.chunks([vm.name, *todo], SPLIT_CHUNK):
            tally(chunk[vm.name], counts)
            _fill(chunk, vm.name, of, todo, filled)
            if src.format == "dta":  # how the file letters is judged from them (decision 97), not read per round
                count_letters(chunk, todo, letters)
        return vm.name, counts, filled, Letters(frozenset(todo), letters) if src.format == "dta" else None
    return None


def _fill(chunk: pd.DataFrame, column: str, of: dict[str, str], todo: list[str], filled: dict[str, set[str]]) -> None:
    """Add to ``filled`` (variable → waves) the waves (by their ``column`` value: ``of``) in whose rows of ``chunk``
    each of the variables ``todo`` holds a value (a number, a text or a Stata letter)."""
    import pandas as pd

    keys = chunk[column].map(lambda v: None if bool(pd.isna(v)) else of.get(content_text(v)))
    for wave_id, part in chunk.groupby(keys, dropna=True):
        for c in todo:
            if part[c].notna().any() or (c + EXT_SUFFIX in part and part[c + EXT_SUFFIX].notna().any()):
                filled[c].add(str(wave_id))


def empty_in_rows(src: SourceFile, waves: list[tuple[Crosswalk, Wave, int]], project: Project, same: SameWork,
                   supplied: dict[str, str], known: dict[str, dict[str, set[str]]] | None = None
                   ) -> dict[str, set[str]]:
    """Per wave of a file read wave by wave, the variables its rules read that hold no value in any of its rows
    (system-missing throughout: a cumulative file has every round's variables, and another round's are empty
    in this round's rows). They are not this round's: the rule's alternative applies, or the target is not
    available, as in the round's own file (not a missing answer of every respondent). The rules are resolved
    again without them until what they read is known (an alternative may read empty variables too). ``known``:
    by the round variable, what :func:`read_rounds` found of the variables it read (not read again)."""
    column = find_variable(src.meta.variables, next(iter(waves[0][1].content or {})))
    assert column is not None
    of = {v: w.wave for _, w, _ in waves for allowed in (w.content or {}).values() for v in content_wanted(allowed)}
    # variable → the waves in whose rows it holds a value
    filled: dict[str, set[str]] = {c: set(w) for c, w in (known or {}).get(column.name, {}).items()}
    empty: dict[str, set[str]] = {w.wave: set() for _, w, _ in waves}
    while True:
        reads = {}
        for cw, wave, _ in waves:
            plan = same.resolve(cw, wave, project, without_variables(src, empty[wave.wave]).meta, supplied)
            names = (find_variable(src.meta.variables, n) for n in plan.sources())
            reads[wave.wave] = {vm.name for vm in names if vm is not None and vm.name not in src.virtual}
        todo = sorted(set().union(*reads.values()) - set(filled) - {column.name})
        filled.update((c, set()) for c in todo)
        for chunk in src.chunks([column.name, *todo], SPLIT_CHUNK) if todo else ():
            _fill(chunk, column.name, of, todo, filled)
        new = {w: {c for c in names_read if c in filled and w not in filled[c]} - empty[w]
               for w, names_read in reads.items()}
        if not any(new.values()):
            return empty
        for w, gone in new.items():
            empty[w] |= gone


def without_variables(src: SourceFile, names: set[str]) -> SourceFile:
    """``src`` as if it lacked the variables ``names`` (another round's, in a file read wave by wave)."""
    if not names:
        return src
    return dataclasses.replace(src, meta=dataclasses.replace(
        src.meta, variables={k: v for k, v in src.meta.variables.items() if k not in names}))


def _counts(src: SourceFile, column: str) -> dict[str | None, int]:
    """Rows per value of ``column`` (as :func:`content_text` gives it; None: missing), the whole file read."""
    out: dict[str | None, int] = {}
    for chunk in src.chunks([column], SPLIT_CHUNK):
        tally(chunk[column], out)
    return out


def tally(column: pd.Series, into: dict[str | None, int]) -> None:
    """Add the rows of ``column`` per value (as :func:`content_text` gives it; None: missing) to ``into``."""
    import pandas as pd

    for v, n in column.value_counts(dropna=False).items():
        key = None if bool(pd.isna(v)) else content_text(v)  # type: ignore[call-overload]
        into[key] = into.get(key, 0) + int(n)


def natural_key(text: str) -> tuple[int, float | str]:
    try:
        return (0, float(text))
    except ValueError:
        return (1, text)


def content_values(column: pd.Series) -> set[str]:
    """The distinct values of a content variable's column (as :func:`harmonise.readers.files.normalise`
    gives it), as text; missing values left out."""
    return {content_text(v) for v in column.dropna().unique()}


def content_wanted(allowed: object) -> set[str]:
    """A wave's ``content`` values of one variable (a value or a list of them), as text."""
    return {content_text(v) for v in (allowed if isinstance(allowed, list) else [allowed])}


def content_text(value: object) -> str:
    """A content value as text: 9, 9.0 and '9' are the same value."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    return str(value).strip()
