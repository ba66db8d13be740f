"""Compile a resolved wave plan into one DuckDB ``SELECT`` over the staged source rows.

The staged relation ``src`` has one column per source variable (DOUBLE for
numeric, VARCHAR for string; blank strings are NULL), ``"<var>#x"`` holding the
Stata extended-missing letter where the file has any, and ``__row`` (the row
number in the file). The compiled query yields, per target, the value column and
``<target>_missing`` (reason, or ``__unmapped__`` for a code nobody accounted
for), and the source columns as ``"src:<var>"``: the harmonisation report renders
source codes as text (``CompiledWave.codes``) after grouping, not on every row.
Derived targets are computed in successive CTE levels in dependency order. A long list literal
(a code list, its values, a code table's column) is written once, as a column of the one-row lists
CTE that every level reads beside its input (see :data:`LIST_INLINE_MAX`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from harmonise.compile.expr import Compiled, Context, NameSQL, compile_expr
from harmonise.compile.sqltext import quote_ident, sql_literal
from harmonise.spec.codetables import TableSet
from harmonise.spec.crosswalk import Crosswalk, TargetValue, Wave
from harmonise.spec.expr import EXPR_TYPES, ExprError, referenced_names
from harmonise.spec.project import Project
from harmonise.spec.resolve import (
    SourceMissing,
    TargetPlan,
    WavePlan,
    expr_source_missing,
    letters_in_order,
    resolve_wave,
)
from harmonise.spec.schema import UNMAPPED, TargetSchema, Variable
from harmonise.spec.source import Code, SourceMeta, VarMeta

POSITION_PREFIX = "__pos:"  # a code position column of the positions CTE (p0): never a source name
INPUT_PREFIX = "__in:"  # an expression input's clean value or reason, a column of p0: never a source name
LISTS = "__lists"  # the one-row CTE of the long list literals, read beside each level's input
LIST_PREFIX = "__list:"  # a column of the lists CTE: never a target or source name
# DuckDB parses and binds every literal it is given: the country lists (hundreds of codes, and their
# values), written where each target reads them, were three quarters of ESS round 8's 121 KB statement and
# about a third of its time on a 2,070-row file (143 → ~100 ms). Lists this long or longer are written once.
LIST_INLINE_MAX = 80

DUCK_TYPES = {"category": "VARCHAR", "string": "VARCHAR", "country": "VARCHAR", "language": "VARCHAR",
              "city": "VARCHAR", "boolean": "BOOLEAN", "integer": "DOUBLE", "number": "DOUBLE"}


class CompileError(Exception):
    """A plan cannot be compiled (e.g. an expression refers to an unknown variable)."""

    def __init__(self, target: str, message: str, path: tuple[str | int, ...] = ()) -> None:
        super().__init__(f"{target}: {message}")
        self.target = target
        self.message = message
        self.path = path


@dataclass
class CompiledWave:
    sql: str
    sources: list[str]
    extended: set[str]
    report_targets: list[str] = field(default_factory=list)
    errors: list[CompileError] = field(default_factory=list)
    codes: dict[str, tuple[str, list[str]]] = field(default_factory=dict)
    """target → (SQL rendering its source code over ``src``, the source columns that SQL reads)."""


def code_text(col: str, numeric: bool) -> str:
    """SQL rendering a source code as text: integral numbers without decimals."""
    if not numeric:
        return col
    return (f"(CASE WHEN abs({col}) < 1e15 AND {col} = trunc({col}) THEN CAST(CAST({col} AS BIGINT) AS VARCHAR) "
            f"ELSE CAST({col} AS VARCHAR) END)")


def _lit_list(codes: list[Code]) -> str:
    return ", ".join(sql_literal(c) for c in codes)


def _ext_case(xcol: str, miss: SourceMissing) -> str:
    whens = " ".join(f"WHEN {sql_literal(k)} THEN {sql_literal(v)}" for k, v in sorted(miss.extended.items()))
    return f"(CASE {xcol} {whens} ELSE {sql_literal(UNMAPPED)} END)" if whens else sql_literal(UNMAPPED)


def whole_numbers(vm: VarMeta | None, lo: float, hi: float) -> bool:
    """Whether a numeric variable read by a range rule of ``[lo, hi]`` holds whole numbers only, as its file
    declares it: an SPSS display format without decimals (F2.0), or else (Stata) at least two labelled codes in the
    range that are all whole (a 0-10 scale's labelled ends; missing codes outside the range say nothing)."""
    if vm is None or vm.type != "numeric":
        return False
    fmt = re.fullmatch(r"[A-Z]+\d+\.(\d+)", (vm.format or "").upper())
    if fmt:
        return fmt.group(1) == "0"
    codes = [c for c in vm.labels if isinstance(c, (int, float)) and not isinstance(c, bool) and lo <= c <= hi]
    return len(codes) >= 2 and all(float(c).is_integer() for c in codes)


class WaveCompiler:
    def __init__(self, plan: WavePlan, meta: SourceMeta, schema: TargetSchema, tables: TableSet,
                 extended: set[str] | None = None) -> None:
        self.plan = plan
        self.meta = meta
        self.schema = schema
        self.tables = tables
        self.extended = extended or set()
        eu, non = tables.eu_groups()
        self.lookups = tables.lookups()
        self.eu, self.non_eu = eu, non
        # while compile() runs: the code positions of map and table targets, computed once per row in a CTE
        # before a0 (each is read three times: value, reason, known), so each code list is written once; and
        # the clean value and reason of each expression input (SQL text → its column there)
        self.positions: list[str] | None = None
        self.inputs: dict[str, str] = {}
        # while compile() runs: each long list literal → its (quoted) column of the lists CTE
        self.lists: dict[str, str] | None = None

    def _list(self, items: str) -> str:
        """The list literal ``[items]``, or (while compiling a wave, when it is long) its lists CTE column."""
        text = f"[{items}]"
        if self.lists is None or len(text) < LIST_INLINE_MAX:
            return text
        return f"{LISTS}.{self.lists.setdefault(text, quote_ident(f'{LIST_PREFIX}{len(self.lists)}'))}"

    def relation(self, name: str, rows: Mapping[Code, object], x: str) -> str:
        """SQL looking ``x`` up through list literals (used by lookup() and eu_group())."""
        keys = self._list(_lit_list(list(rows)))
        vals = self._list(", ".join(sql_literal(v) for v in rows.values()))
        return f"{vals}[list_position({keys}, {x})]"

    # --- source columns ----------------------------------------------------------
    def _numeric(self, source: str) -> bool:
        vm = self.meta.get(source)
        return vm is None or vm.type == "numeric"

    def _col(self, source: str) -> str:
        vm = self.meta.get(source)
        return f"src.{quote_ident(vm.name if vm else source)}"

    def _xcol(self, source: str) -> str | None:
        vm = self.meta.get(source)
        name = vm.name if vm else source
        return f"src.{quote_ident(name + '#x')}" if name in self.extended else None

    def _missing_cases(self, col: str, miss: SourceMissing, numeric: bool) -> list[str]:
        whens = []
        by_reason: dict[str, list[Code]] = {}
        for code, reason in miss.reasons.items():
            if isinstance(code, str) == (not numeric):
                by_reason.setdefault(reason, []).append(code)
        for reason, codes in by_reason.items():
            whens.append(f"WHEN {col} IN ({_lit_list(sorted(codes, key=str))}) THEN {sql_literal(reason)}")
        return whens

    def source_reason(self, source: str, miss: SourceMissing, valid_sql: str | None, valid_reason: str = "NULL") -> str:
        """The missing reason of a source value; ``valid_reason``: that of a valid one (a range rule's
        transform may give no value, with its reason)."""
        col, xcol, numeric = self._col(source), self._xcol(source), self._numeric(source)
        parts = []
        if xcol:
            parts.append(f"WHEN {xcol} IS NOT NULL THEN {_ext_case(xcol, miss)}")
        parts.append(f"WHEN {col} IS NULL THEN {sql_literal(miss.system)}")
        if valid_sql:
            parts.append(f"WHEN {valid_sql} THEN {valid_reason}")
        parts.extend(self._missing_cases(col, miss, numeric))
        if valid_sql:
            parts.append(f"ELSE {sql_literal(UNMAPPED)}")
        else:  # no valid domain (an expression's input): what the file declares missing is never a value
            left = [c for c in miss.values if c not in miss.reasons and isinstance(c, str) == (not numeric)]
            if left:
                parts.append(f"WHEN {col} IN ({_lit_list(sorted(left, key=str))}) THEN {sql_literal(UNMAPPED)}")
            for lo, hi in miss.ranges:
                if numeric:
                    parts.append(f"WHEN {col} BETWEEN {sql_literal(lo)} AND {sql_literal(hi)} THEN {sql_literal(UNMAPPED)}")
        return "(CASE " + " ".join(parts) + " END)"

    def source_code(self, source: str) -> str:
        col, xcol = self._col(source), self._xcol(source)
        text = code_text(col, self._numeric(source))
        ext = f"WHEN {xcol} IS NOT NULL THEN '.' || {xcol} " if xcol else ""
        return f"(CASE {ext}WHEN {col} IS NULL THEN '.' ELSE {text} END)"

    def source_name(self, source: str, explicit: dict[Code, str] | None = None, target: str = "") -> NameSQL:
        """Clean value + reason of a source variable referenced from an expression (of ``target``: its letters
        may be read in the file's order, ``WavePlan.letters``)."""
        vm = self.meta.get(source)
        if vm is None:
            raise KeyError(source)
        letters = self.plan.letters.get(target, {}).get(vm.name)
        miss = expr_source_missing(self.plan.crosswalk.missing, vm, explicit, letters)
        reason = self.source_reason(source, miss, None)
        value = self._input(f"(CASE WHEN {reason} IS NULL THEN {self._col(source)} END)")
        reason = self._input(reason)
        return NameSQL(value=value, reason=reason, type="number" if vm.type == "numeric" else "string")

    def context(self, resolve) -> Context:  # type: ignore[no-untyped-def]
        return Context(resolve=resolve, reasons=self.schema.reasons, params=self.schema.params,
                       tables=self.lookups, eu_codes=self.eu, non_eu_codes=self.non_eu,
                       relation=self.relation)

    # --- one target --------------------------------------------------------------
    def direct(self, var: Variable, plan: TargetPlan) -> tuple[str, str, str]:
        """(value, reason, source code) SQL of a non-derived target."""
        ttype = DUCK_TYPES[var.type]
        k = plan.kind
        if k == "automatic":
            lit = {"survey": self.plan.survey, "wave": self.plan.wave.wave, "year": self.plan.wave.year}[var.name]
            return sql_literal(lit), "NULL", "NULL"
        if k == "not_asked":
            return f"CAST(NULL AS {ttype})", sql_literal("not_asked"), "NULL"
        if k == "absent":  # the file lacks the rule's variables: not available in this file
            return f"CAST(NULL AS {ttype})", sql_literal("not_available"), "NULL"
        if k == "row_id":  # the file lacks its key variables: file name and row number
            return f"({sql_literal(Path(self.meta.origin).stem + '-')} || CAST(src.__row AS VARCHAR))", "NULL", "NULL"
        if k == "constant":
            return f"CAST({sql_literal(plan.constant)} AS {ttype})", "NULL", "NULL"
        if k == "expr":
            assert plan.expr is not None
            c = compile_expr(plan.expr, self.context(lambda n: self.source_name(n, plan.explicit_missing, plan.target)))
            src = "NULL"
            if var.type in ("category", "boolean"):
                names = referenced_names(plan.expr)
                src = " || ';' || ".join(f"'{n}=' || {self.source_code(n)}" for n in names) or "NULL"
            return f"CAST({c.value} AS {ttype})", f"(CASE WHEN ({c.value}) IS NULL THEN {c.reason} END)", src
        if plan.source is None:
            raise CompileError(var.name, f"a '{k}' rule needs a source variable", plan.path)
        if self.meta.get(plan.source) is None:
            raise KeyError(plan.source)
        col = self._col(plan.source)
        numeric = self._numeric(plan.source)
        xguard = f"{self._xcol(plan.source)} IS NULL AND " if self._xcol(plan.source) else ""
        if k == "range":
            assert plan.range is not None
            lo, hi = plan.range
            # a code with a missing reason inside the range (the rule's own, or one the file declares missing and
            # labels so) is missing, not a value
            held: list[Code] = sorted(c for c in plan.missing.reasons
                          if isinstance(c, (int, float)) and not isinstance(c, bool) and lo <= c <= hi) if numeric else []
            inr = f"({xguard}{col} BETWEEN {sql_literal(lo)} AND {sql_literal(hi)}" + (
                f" AND {col} NOT IN ({_lit_list(held)}))" if held else ")")
            val, why = col, "NULL"
            if plan.transform:
                tc = compile_expr(plan.transform, self.context(
                    lambda n: NameSQL(col, "NULL", "number") if n == "x" else (_ for _ in ()).throw(KeyError(n))))
                if tc.type not in ("number", "unknown"):
                    raise ExprError(f"transform gives {'text' if tc.type == 'string' else 'true/false'}, but a range "
                                    f"rule's value is a number ({var.name} is {var.type})")
                # a transform may give no value (missing('reason'), a zero divisor): stored with its reason
                val, why = tc.value, f"(CASE WHEN ({tc.value}) IS NULL THEN {tc.reason} END)"
            value = f"CAST(CASE WHEN {inr} THEN {val} END AS {ttype})"
            reason = self.source_reason(plan.source, plan.missing, inr, why)
            # a code in the range that the file declares user-missing is a value, as the rule says, but the report
            # names it by itself, so that the declared-missing-value note can tell the author (trust 0 declared)
            declared = self._declared_in(plan.source, lo, hi) if numeric else []
            shown = f"{inr} AND NOT ({' OR '.join(declared)})" if declared else inr
            # a variable of whole numbers (a 0-10 scale) holding 5.5: the report names such values by themselves, so
            # that the fractional-values warning can say them (the rule stores them, as its range allows)
            shown += f" AND {col} = trunc({col})" if numeric and whole_numbers(self.meta.get(plan.source), lo, hi) else ""
            code = f"(CASE WHEN {shown} THEN {sql_literal(f'[{lo:g}, {hi:g}]')} ELSE {self.source_code(plan.source)} END)"
            return value, reason, code
        # map / table: positional lookup in list literals (cheap to plan, vectorised to run)
        values = {c: v for c, v in plan.values.items() if isinstance(c, str) == (not numeric)}
        reasons = {c: r for c, r in plan.missing.reasons.items() if isinstance(c, str) == (not numeric)}
        codes = list(values) + list(reasons)
        xcol = self._xcol(plan.source)
        xguard = f"{xcol} IS NULL AND " if xcol else ""
        if codes:
            pos = self._position(var.name, f"list_position({self._list(_lit_list(codes))}, {col})")
            vals = self._list(", ".join([*(sql_literal(v) for v in values.values()), *(["NULL"] * len(reasons))]))
            whys = self._list(", ".join([*(["NULL"] * len(values)), *(sql_literal(r) for r in reasons.values())]))
            value = f"CAST(CASE WHEN {xguard}TRUE THEN {vals}[{pos}] END AS {ttype})"
            known, why = f"{pos} IS NOT NULL", f"{whys}[{pos}]"
        else:
            value, known, why = f"CAST(NULL AS {ttype})", "FALSE", "NULL"
        parts = []
        if xcol:
            parts.append(f"WHEN {xcol} IS NOT NULL THEN {_ext_case(xcol, plan.missing)}")
        parts.append(f"WHEN {col} IS NULL THEN {sql_literal(plan.missing.system)}")
        parts.append(f"WHEN NOT ({known}) THEN {sql_literal(UNMAPPED)}")
        reason = "(CASE " + " ".join(parts) + f" ELSE {why} END)"
        return value, reason, self.source_code(plan.source)

    def _declared_in(self, source: str, lo: float, hi: float) -> list[str]:
        """SQL conditions on ``source``'s column for the values and ranges the file declares user-missing that
        lie in ``[lo, hi]`` (a range rule's valid values)."""
        vm = self.meta.get(source)
        if vm is None:
            return []
        col = self._col(source)
        out = [f"{col} = {sql_literal(float(v))}" for v in sorted({v for v in vm.missing_values
               if isinstance(v, (int, float)) and lo <= v <= hi})]
        out += [f"{col} BETWEEN {sql_literal(max(a, lo))} AND {sql_literal(min(b, hi))}"
                for a, b in vm.missing_ranges if a <= hi and b >= lo]
        return out

    def _position(self, target: str, sql: str) -> str:
        """``sql`` as a column of the positions CTE (while compiling a wave), else ``sql`` itself."""
        if self.positions is None:
            return sql
        alias = quote_ident(f"{POSITION_PREFIX}{target}")
        self.positions.append(f"{sql} AS {alias}")
        return f"src.{alias}"

    def _input(self, sql: str) -> str:
        """``sql`` (an expression input's clean value or reason) as a column of the positions CTE (while
        compiling a wave), written once however often expressions read it, else ``sql`` itself. Inlined, an
        input was written wherever an expression named it, and again inside each reason that tests the value:
        half of ESS round 8's statement, and DuckDB binds every copy."""
        if self.positions is None:
            return sql
        alias = self.inputs.get(sql)
        if alias is None:
            alias = self.inputs[sql] = quote_ident(f"{INPUT_PREFIX}{len(self.inputs)}")
            self.positions.append(f"{sql} AS {alias}")
        return f"src.{alias}"

    def raw_columns(self, plan: TargetPlan) -> list[str]:
        """The ``src`` columns (with Stata letter columns) a target's source-code SQL reads."""
        if plan.kind in ("map", "table", "range"):
            names = [plan.source] if plan.source else []
        elif plan.kind == "expr" and plan.expr:
            names = referenced_names(plan.expr)
        else:
            names = []
        out = []
        for n in names:
            vm = self.meta.get(n)
            name = vm.name if vm else n
            out.extend([name, name + "#x"] if name in self.extended else [name])
        return out

    def derived(self, var: Variable, plan: TargetPlan, available: set[str]) -> tuple[str, str]:
        assert plan.expr is not None

        def resolve(name: str) -> NameSQL:
            if name not in available:
                raise KeyError(name)
            v = self.schema.variable(name)
            reason = "NULL" if v.required else quote_ident(v.missing_column)
            return NameSQL(quote_ident(name), reason, EXPR_TYPES[v.type])

        c: Compiled = compile_expr(plan.expr, self.context(resolve))
        ttype = DUCK_TYPES[var.type]
        return f"CAST({c.value} AS {ttype})", f"(CASE WHEN ({c.value}) IS NULL THEN {c.reason} END)"

    # --- whole wave ----------------------------------------------------------------
    def compile(self) -> CompiledWave:
        self.positions, self.lists, self.inputs = [], {}, {}
        try:
            return self._compile(self.positions, self.lists)
        finally:
            self.positions = self.lists = None
            self.inputs = {}

    def _compile(self, positions: list[str], lists: dict[str, str]) -> CompiledWave:
        errors: list[CompileError] = []
        direct_cols: list[str] = ["src.__row AS source_row"]
        report: list[str] = []
        derived: list[tuple[Variable, TargetPlan]] = []
        codes: dict[str, tuple[str, list[str]]] = {}
        raw_cols: list[str] = []
        raw_seen: set[str] = set()
        for var in self.schema.variables:
            plan = self.plan.targets.get(var.name)
            if plan is None:
                continue
            if plan.kind == "derived":
                derived.append((var, plan))
                continue
            try:
                value, reason, code = self.direct(var, plan)
            except KeyError as exc:
                errors.append(CompileError(var.name, f"source variable {exc.args[0]!r} is not in the file", plan.path))
                continue
            except ExprError as exc:
                errors.append(CompileError(var.name, str(exc), plan.path))
                continue
            except CompileError as exc:
                errors.append(exc)
                continue
            direct_cols.append(f"{value} AS {quote_ident(var.name)}")
            if not var.required:
                direct_cols.append(f"{reason} AS {quote_ident(var.missing_column)}")
            if code != "NULL":
                raw = self.raw_columns(plan)
                codes[var.name] = (code, raw)
                for c in raw:
                    if c not in raw_seen:
                        raw_seen.add(c)
                        raw_cols.append(f"src.{quote_ident(c)} AS {quote_ident('src:' + c)}")
            if not var.required or plan.kind not in ("automatic",):
                report.append(var.name)
        available = {v.name for v in self.schema.variables
                     if v.name in self.plan.targets and self.plan.targets[v.name].kind != "derived"}
        levels: list[list[str]] = []  # the derived columns of a1, a2, …
        pending = list(derived)
        while pending:
            ready: list[tuple[Variable, TargetPlan, set[str] | None]] = []
            for var, plan in pending:
                try:
                    need = set(referenced_names(plan.expr or ""))
                except ExprError as exc:
                    errors.append(CompileError(var.name, str(exc), plan.path))
                    ready.append((var, plan, None))
                    continue
                unknown = need - set(self.schema.names)
                if unknown:
                    errors.append(CompileError(var.name, f"derivation refers to unknown variable(s) {sorted(unknown)}"))
                    ready.append((var, plan, None))
                elif need <= available:
                    ready.append((var, plan, need))
            if not ready:
                names = sorted(v.name for v, _ in pending)
                errors.append(CompileError(names[0], f"circular derivation among {', '.join(names)}"))
                break
            cols = []
            for var, plan, needs in ready:
                pending.remove((var, plan))
                if needs is None:
                    continue
                try:
                    value, reason = self.derived(var, plan, available)
                except ExprError as exc:
                    errors.append(CompileError(var.name, str(exc), plan.path))
                    continue
                cols.append(f"{value} AS {quote_ident(var.name)}")
                cols.append(f"{reason} AS {quote_ident(var.missing_column)}")
                report.append(var.name)
            for var, _plan, needs in ready:
                if needs is not None:
                    available.add(var.name)
            levels.append(cols)
        # the lists CTE is read beside each level's input (a one-row cross join; its columns are named)
        beside = f", {LISTS}" if lists else ""
        ctes = [f"{LISTS} AS (SELECT {', '.join(f'{text} AS {col}' for text, col in lists.items())})"
                ] if lists else []
        # an input's reason no expression reads (that of a required target's input) is left out
        read = ", ".join(direct_cols)
        unread = {f"{sql} AS {alias}" for sql, alias in self.inputs.items() if f"src.{alias}" not in read}
        positions = [p for p in positions if p not in unread]
        if positions:
            ctes.append(f"p0 AS (SELECT src.*, {', '.join(positions)} FROM src{beside})")
        ctes.append(f"a0 AS (SELECT {read}{''.join(', ' + c for c in raw_cols)} "
                    f"FROM {'p0 AS src' if positions else 'src'}{beside})")
        for level, cols in enumerate(levels):
            ctes.append(f"a{level + 1} AS (SELECT a{level}.*, {', '.join(cols)} FROM a{level}{beside})"
                        if cols else f"a{level + 1} AS (SELECT * FROM a{level})")
        sql = "WITH " + ",\n".join(ctes) + f"\nSELECT * FROM a{len(levels)}"
        return CompiledWave(sql=sql, sources=self.plan.sources(), extended=self.extended,
                            report_targets=report, errors=errors, codes=codes)


def compile_wave(plan: WavePlan, meta: SourceMeta, schema: TargetSchema, tables: TableSet,
                 extended: set[str] | None = None) -> CompiledWave:
    """Compile ``plan`` against the source metadata ``meta``."""
    return WaveCompiler(plan, meta, schema, tables, extended).compile()


def target_checks(plan: WavePlan, meta: SourceMeta, schema: TargetSchema, tables: TableSet,
                  extended: set[str] | None = None) -> list[tuple[str, str]]:
    """(target, a query over ``src`` computing only that target's value and reason, as the wave's SQL does)
    for each rule of ``plan`` read from the file (not derived): run one by one, they find the rule a DuckDB
    error of the whole wave's SQL comes from."""
    compiler = WaveCompiler(plan, meta, schema, tables, extended)
    out = []
    for var in schema.variables:
        tp = plan.targets.get(var.name)
        if tp is None or tp.kind not in ("map", "table", "range", "expr", "constant"):
            continue
        try:
            value, reason, _ = compiler.direct(var, tp)
        except (KeyError, ExprError, CompileError):  # reported as the wave's compile errors
            continue
        out.append((var.name, f"SELECT count({value}), count({reason}) FROM src"))
    return out


def stata_letters(meta: SourceMeta) -> set[str]:
    """Numeric variables of a Stata file, whose extended missing letters the reader stages as ``<var>#x``."""
    return {n for n, vm in meta.variables.items() if vm.type == "numeric"}


def compile_in_order(plan: WavePlan, letters: dict[str, dict[str, dict[str, str]]], meta: SourceMeta,
                     schema: TargetSchema, tables: TableSet) -> tuple[WavePlan, CompiledWave]:
    """``plan`` with a Stata file's unlabelled missing letters read in each variable's order (``letters``: target
    → variable → letter → reason, decision 97), and its SQL."""
    mine = letters_in_order(plan, letters, meta.variables)
    return mine, compile_wave(mine, meta, schema, tables, stata_letters(meta))


def plan_and_compile(cw: Crosswalk, wave: Wave, project: Project, meta: SourceMeta, stata: bool = False,
                     supplied: Mapping[str, TargetValue] | None = None) -> tuple[WavePlan, CompiledWave]:
    """Resolve ``wave`` of ``cw`` against ``meta`` and compile it; ``stata``: the file is a .dta (its
    numeric columns carry extended missing letters); ``supplied``: target → value the user gave for
    the file (``--country``). The one path from declarations to SQL."""
    assert project.schema is not None
    plan = resolve_wave(cw, wave, project.schema, project.tables, meta.variables, supplied)
    return plan, compile_wave(plan, meta, project.schema, project.tables, stata_letters(meta) if stata else None)
