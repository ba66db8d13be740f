"""Warnings about a wave's data that the crosswalk accepts but a user should hear about.

They come from the harmonisation report (one row per distinct source code and result):

- an expression read a code of a labelled input outside the range of its labelled valid codes
  (``pdwrk = 2`` where only 0 and 1 are labelled): an expression has no list of valid codes, so
  the code was read as a value — an unlabelled missing code, or a new edition's new code;
- an expression read as a number a labelled code lying apart from its input's unlabelled values (a
  'Still in education' 97 beside years of education): a category, not a point of the scale;
- the weight is missing in some rows: weighted estimates leave those respondents out;
- the file has no rows.

And one from the built rows: a survey-wave whose weights are all zero (or some negative).
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from harmonise.compile.sql import whole_numbers
from harmonise.compile.sqltext import quote_ident
from harmonise.errors import Issue, more
from harmonise.spec.resolve import WavePlan, expr_source_missing
from harmonise.spec.schema import UNMAPPED
from harmonise.spec.source import SourceMeta, VarMeta, find_variable

if TYPE_CHECKING:
    import duckdb

ReportRow = tuple[str, str | None, str | None, str | None, int]  # target, source code, value, reason, n
WEIGHT = "weight"  # the weight indicators use by default
WEIGHTS = (WEIGHT, "weight_design")  # the weights `--weight` may choose (and none)


class _Input:
    """A numeric input of an expression target: its labelled valid range and its missing codes."""

    def __init__(self, plan: WavePlan, target: str, name: str, meta: SourceMeta) -> None:
        self.range: tuple[float, float] | None = None
        self.missing: set[float] = set()
        self.vm = vm = meta.get(name)
        if vm is None or vm.type != "numeric":
            return
        miss = expr_source_missing(plan.crosswalk.missing, vm, plan.targets[target].explicit_missing)
        self.missing = {float(c) for c in miss.reasons if isinstance(c, (int, float))}
        valid = [float(c) for c in vm.labels if isinstance(c, (int, float)) and not self.is_missing(float(c))]
        if len(valid) >= 2:
            self.range = (min(valid), max(valid))

    def is_missing(self, code: float) -> bool:
        return code in self.missing or (self.vm is not None and self.vm.declared_missing(code))

    def outside(self, code: float) -> bool:
        """True when ``code`` was read as a value although it lies outside the labelled valid codes."""
        return self.range is not None and not self.range[0] <= code <= self.range[1] and not self.is_missing(code)


def _numeric_inputs(rep: Sequence[ReportRow], plan: WavePlan) -> Iterator[tuple[str, str, str, float, int]]:
    """(target, input, code as written, code, rows) of every numeric input code in the report rows of expression
    targets that gave a value."""
    expr: dict[str, bool] = {}  # per target: whether it is an expression
    for target, code, _, reason, n in rep:
        if reason is not None or not code:
            continue
        if target not in expr:
            tp = plan.targets.get(target)
            expr[target] = tp is not None and tp.kind == "expr"
        if not expr[target]:
            continue
        for part in code.split(";"):
            name, _, text = part.partition("=")
            try:
                value = float(text)
            except ValueError:  # system or extended missing ('.', '.a'), or text
                continue
            yield target, name, text, value, n


def _input_issue(plan: WavePlan, target: str, name: str, message: str, hint: str, codes: Sequence[str],
                 **kind: Any) -> Issue:
    """An issue about the ``codes`` of input ``name`` of the expression for ``target``, located at the rule
    (``kind``: its code and severity, written where it is called, where docs/issues.md's test reads them)."""
    tp = plan.targets[target]
    return Issue(message, survey=plan.survey, wave=plan.wave.wave, variable=name, path=".".join(map(str, tp.path)),
                 hint=hint, extra={"yaml_path": tp.path, "source_codes": list(codes)}, **kind)


def _rows_said(items: list[tuple[str, str, int]]) -> str:
    """``97 'Still studying' (6 rows), …`` for (code, label, rows), five at most and how many more."""
    return ", ".join(f"{c} '{label}' ({n:,} row{'s' if n != 1 else ''})" for c, label, n in items[:5]) + \
        more(len(items) - 5)


def _said_once(found: Iterable[tuple[str, str, Hashable, dict[Any, int]]]
               ) -> list[tuple[str, Any, list[str], dict[Any, int]]]:
    """(input, ``extra``, targets, code → rows) for (target, input, ``extra``, code → rows): one per input, ``extra``
    and codes, so that an input several expressions read (ESS pdwrk: labour_status and the current job's items) is
    said once, naming them; its rows are the most any target's report holds (they may count a code's rows apart)."""
    groups: dict[tuple[str, tuple[Any, ...], Hashable], list[str]] = {}
    rows: dict[tuple[str, Any], int] = {}
    for target, name, extra, codes in sorted(found, key=lambda f: (f[0], f[1])):
        groups.setdefault((name, tuple(sorted(codes, key=str)), extra), []).append(target)
        for c, n in codes.items():
            rows[(name, c)] = max(n, rows.get((name, c), 0))
    return sorted(((name, extra, targets, {c: rows[(name, c)] for c in listed})
                   for (name, listed, extra), targets in groups.items()), key=lambda g: (g[2][0], g[0]))


def _judged(seen: dict[tuple[str, str], _Input], plan: WavePlan, target: str, name: str, meta: SourceMeta) -> _Input:
    """The input ``name`` of ``target``, made once per metadata and plan (``seen``: ``SameWork.once``)."""
    if (target, name) not in seen:
        seen[(target, name)] = _Input(plan, target, name, meta)
    return seen[(target, name)]


def unlabelled_input_codes(rep: Sequence[ReportRow], plan: WavePlan, meta: SourceMeta,
                           seen: dict[tuple[str, str], _Input] | None = None) -> list[Issue]:
    """One warning per expression input (naming the targets whose expressions read it) whose rows hold codes outside
    its labelled range
    (labelled valid codes: neither declared missing nor given a missing reason; at least two). ``seen``: the
    inputs judged already, shared by the files whose metadata and plan are these (``SameWork.once``)."""
    found: dict[tuple[str, str], dict[str, int]] = {}
    seen = {} if seen is None else seen
    for target, name, text, value, n in _numeric_inputs(rep, plan):
        if _judged(seen, plan, target, name, meta).outside(value):
            codes = found.setdefault((target, name), {})
            codes[text] = codes.get(text, 0) + n
    out = []
    for name, (lo, hi), targets, codes in _said_once(
            (target, name, seen[(target, name)].range, codes) for (target, name), codes in found.items()):
        ordered = sorted(codes.items(), key=lambda cn: _code_order(cn[0]))
        shown = ", ".join(f"{c} ({n:,} row{'s' if n != 1 else ''})" for c, n in ordered[:5])
        if len(ordered) > 5:
            rest = sum(n for _, n in ordered[5:])
            shown += more(len(ordered) - 5, detail=f"{rest:,} row{'s' if rest != 1 else ''}")
        out.append(_input_issue(
            plan, targets[0], name, f"expression input {name} has code(s) {shown} outside its labelled codes "
            f"{lo:g}–{hi:g}; the expression{'s' if len(targets) > 1 else ''} for {', '.join(targets)} read them as "
            "values",
            "if a code means missing, give it a reason under the rule's missing: (e.g. "
            f"'{next(iter(sorted(codes)))}: invalid'); if the edition added it, check the expression",
            [c for c, _ in ordered], code="unlabelled-input-code", severity="warning"))
    return out


def labelled_beyond_values(rep: Sequence[ReportRow], plan: WavePlan, meta: SourceMeta,
                           judged: dict[tuple[str, str], _Input] | None = None) -> list[Issue]:
    """One warning per expression target and input that reads, as a number, a labelled code lying apart from the
    input's unlabelled values: a count or scale (two or more unlabelled codes observed) whose code past them carries
    a label that is no number ('Still in education' 97 beside years of education 0–25). Such a code is a category,
    not a point of the scale; scale end points ('Complete trust' 10 beside 9) and top codes ('95 or older') are
    not."""
    seen: dict[tuple[str, str], dict[float, tuple[str, int]]] = {}  # per (target, input): code → (text, rows)
    for target, name, text, value, n in _numeric_inputs(rep, plan):
        codes = seen.setdefault((target, name), {})
        codes[value] = (text, codes.get(value, (text, 0))[1] + n)
    out = []
    for (target, name), codes in sorted(seen.items()):
        vm = meta.get(name)
        if vm is None or vm.type != "numeric" or not vm.labels:
            continue
        labels = {float(c): label for c, label in vm.labels.items() if isinstance(c, (int, float))}
        plain_values = [v for v in codes if v not in labels]
        if len(plain_values) < 2:
            continue
        lo, hi = min(plain_values), max(plain_values)
        apart = [(v, labels[v]) for v in sorted(codes) if v in labels and not any(ch.isdigit() for ch in labels[v])
                 and (v > hi + 1 or v < lo - 1)]
        read = _judged({} if judged is None else judged, plan, target, name, meta) if apart else None
        # its missing codes read as missing, whatever the expression makes of them
        apart = [(v, label) for v, label in apart if read is not None and not read.is_missing(v)]
        if not apart:
            continue
        said = [(codes[v][0], label, codes[v][1]) for v, label in apart]
        shown = _rows_said(said)
        out.append(_input_issue(
            plan, target, name, f"expression input {name} has labelled code(s) {shown} apart from its unlabelled "
            f"values {lo:g}–{hi:g}; the expression for {target} read them as numbers",
            f"if such a code is a category rather than a number of {name}'s scale, handle it in the expression "
            f"(e.g. `... if {name} != {codes[apart[0][0]][0]} else ...`) or give it a reason under the rule's "
            "missing:", [c for c, _, _ in said], code="labelled-input-value", severity="warning"))
    return out


def new_input_codes(rep: Sequence[ReportRow], plan: WavePlan, meta: SourceMeta, declared: SourceMeta | None,
                    judged: dict[tuple[str, str], _Input] | None = None) -> list[Issue]:
    """One warning per expression input (naming the targets whose expressions read it) whose rows hold codes the file
    labels but the declared codebook,
    for which the expression was written, does not (`pdwrk` 2 'Other' beside 0 'Not marked', 1 'Marked'): an
    edition's new category, which the expression reads as a value without knowing it. Only for inputs the declared
    codebook labels in full (two or more labelled codes, no unlabelled value in the rows)."""
    if declared is None:
        return []
    found: dict[tuple[str, str], dict[float, tuple[str, int]]] = {}
    values: dict[tuple[str, str], set[float]] = {}
    for target, name, text, value, n in _numeric_inputs(rep, plan):
        values.setdefault((target, name), set()).add(value)
        codes = found.setdefault((target, name), {})
        codes[value] = (text, codes.get(value, (text, 0))[1] + n)
    new_codes: list[tuple[str, str, Hashable, dict[Any, int]]] = []
    texts: dict[tuple[str, float], str] = {}
    for (target, name), codes in sorted(found.items()):
        vm, dv = meta.get(name), declared.get(name)
        if vm is None or dv is None or vm.type != "numeric" or dv.type != "numeric" or len(dv.labels) < 2:
            continue
        labelled = {float(c) for c in vm.labels if isinstance(c, (int, float))}
        known = {float(c) for c in dv.labels if isinstance(c, (int, float))}
        if not values[(target, name)] <= labelled:  # a count or scale with labelled ends: not a list of categories
            continue
        new = [v for v in sorted(codes) if v not in known]
        if new:
            read = _judged({} if judged is None else judged, plan, target, name, meta)
            new = [v for v in new if not read.is_missing(v)]
        if not new:
            continue
        new_codes.append((target, name, None, {v: codes[v][1] for v in new}))
        texts.update({(name, v): codes[v][0] for v in new})
    out = []
    for name, _, targets, rows in _said_once(new_codes):
        var = meta.get(name)
        labels = var.labels if var is not None else {}
        said = [(texts[(name, v)], labels.get(v, labels.get(int(v), "")), n) for v, n in sorted(rows.items())]
        shown = _rows_said(said)
        out.append(_input_issue(
            plan, targets[0], name, f"expression input {name} has code(s) {shown} that {declared.origin} does not "
            f"have; the expression{'s' if len(targets) > 1 else ''} for {', '.join(targets)}, written for its codes, "
            "read them as values",
            "check what the expression makes of them (harmonise inspect FILE lists the labels): handle them in a "
            "wave override of the expression, or give them a reason under the rule's missing:",
            [c for c, _, _ in said], code="new-input-code", severity="warning"))
    return out


def declared_missing_values(rep: Sequence[ReportRow], plan: WavePlan, meta: SourceMeta) -> list[Issue]:
    """One note per source variable whose rows hold codes the file declares user-missing but the rule maps as values
    (trust 0 declared missing; ESS10 UA's national release declares `vote` 3, 'Not eligible to vote', missing):
    stored as values, as the crosswalk says — the file's declaration and the crosswalk differ, and the author of
    either may be right."""
    found: dict[tuple[str, str], dict[str, int]] = {}
    declaring: dict[str, VarMeta | None] = {}  # per target: its source variable, when it declares missing codes
    for target, code, value, reason, n in rep:
        if reason is not None or value is None or not code:
            continue
        if target not in declaring:
            tp = plan.targets.get(target)
            found_vm = find_variable(meta.variables, tp.source) \
                if tp is not None and tp.kind in ("map", "range", "table") and tp.source else None
            declaring[target] = found_vm if found_vm is not None and (found_vm.missing_values or found_vm.missing_ranges) \
                else None
        vm = declaring[target]
        if vm is None:
            continue
        try:
            key: float | str = code if vm.type == "string" else float(code)
        except ValueError:
            continue
        if vm.declared_missing(key):
            codes = found.setdefault((target, vm.name), {})
            codes[code] = codes.get(code, 0) + n
    out = []
    for (target, name), codes in sorted(found.items()):
        tp = plan.targets[target]
        ordered = sorted(codes.items(), key=lambda cn: _code_order(cn[0]))
        shown = ", ".join(f"{c} ({n:,} row{'s' if n != 1 else ''})" for c, n in ordered[:5])
        if len(ordered) > 5:
            rest = sum(n for _, n in ordered[5:])
            shown += more(len(ordered) - 5, detail=f"{rest:,} row{'s' if rest != 1 else ''}")
        out.append(Issue(
            f"{name}: the file declares code(s) {shown} user-missing, but the rule maps them as values of {target}: "
            "stored as values", code="declared-missing-value", severity="note", survey=plan.survey,
            wave=plan.wave.wave, variable=name, path=".".join(map(str, tp.path)),
            extra={"yaml_path": tp.path, "source_codes": [c for c, _ in ordered]},
            hint="if the file is right, give the codes a missing reason under the rule's missing: (a wave override); "
                 "if the declaration is the file's slip, nothing to do"))
    return out


def _code_order(code: str) -> tuple[int, float, str]:
    """Numeric codes by value (9 before 10), then text codes."""
    try:
        return (0, float(code), code)
    except ValueError:
        return (1, 0.0, code)


def missing_weights(rep: Sequence[ReportRow], plan: WavePlan, rows: int) -> list[Issue]:
    """A warning per weight (the analysis weight, the design weight) missing in some rows for a reason other than
    not_asked: the estimates weighted by it leave those respondents out. A weight the file lacks altogether is the
    not-available warning's (:func:`harmonise.checks.accounting.not_available`)."""
    reasons: dict[str, dict[str, int]] = {}
    for target, _, _, reason, n in rep:
        # an unmapped code (a weight of inf) is the unmapped-code error's, which names it
        if target in WEIGHTS and reason is not None and reason not in ("not_asked", UNMAPPED):
            reasons.setdefault(target, {})[reason] = reasons.get(target, {}).get(reason, 0) + n
    out = []
    for target in WEIGHTS:
        if target not in reasons or target not in plan.targets or plan.targets[target].kind == "absent":
            continue
        tp = plan.targets[target]
        total = sum(reasons[target].values())
        why = ", ".join(f"{r} {n:,}" for r, n in sorted(reasons[target].items()))
        used = "weighted indicators" if target == WEIGHT else "indicators weighted by it (--weight weight_design)"
        out.append(Issue(f"{target} is missing in {total:,} of {rows:,} rows ({why}); {used} leave these "
                         "respondents out", code="missing-weight", severity="warning", survey=plan.survey,
                         wave=plan.wave.wave, path=".".join(map(str, tp.path)),
                         hint="check the weight variables of the file", extra={"yaml_path": tp.path}))
    return out


def content_missing(unset: dict[str, int], plan: WavePlan, file: str, rows: int) -> list[Issue]:
    """A warning per variable that tells the survey's waves apart (``essround``) without a value in some rows of a
    file of one wave (``unset``: variable → such rows): they are stored as the file's wave, the wave of its other
    rows or the one its name or the options give — an assumption the user should hear of."""
    out = []
    for column, n in unset.items():
        if n:
            which = f"all {rows:,} rows" if n == rows else f"{n:,} of its {rows:,} rows"
            out.append(Issue(
                f"{file}: {column} has no value in {which}; they are stored as {plan.survey} wave {plan.wave.wave}, as "
                "the file's wave", code="content-missing", severity="warning", survey=plan.survey,
                wave=plan.wave.wave, variable=column,
                hint=f"if some are another wave's rows, give them that wave's {column} (a file of several waves is read "
                     "wave by wave)"))
    return out


def no_rows(plan: WavePlan, file: str, rows: int) -> list[Issue]:
    """A warning for a file without respondents."""
    if rows:
        return []
    return [Issue(f"the file has no rows: {plan.survey} wave {plan.wave.wave} adds no respondents", code="no-rows",
                  severity="warning", file=file, survey=plan.survey, wave=plan.wave.wave,
                  hint="check that the file is the complete release")]


def weight_issues(con: duckdb.DuckDBPyConnection, table: str = "respondents") -> list[Issue]:
    """Warnings for survey-waves whose weights (the analysis weight and the design weight, each of which
    ``--weight`` may choose) are all zero (every cell weighted by it is then suppressed: its weighted total is 0),
    zero for some respondents (left out of the estimates weighted by it) or partly negative (a weight cannot be
    negative; estimates would be wrong). Missing weights are said per file (:func:`missing_weights`)."""
    return [i for column in WEIGHTS for i in _weight_issues(con, table, column)]


def _weight_issues(con: duckdb.DuckDBPyConnection, table: str, column: str) -> list[Issue]:
    """:func:`weight_issues` of one weight ``column``."""
    w = quote_ident(column)
    rows = con.execute(f"SELECT survey, wave, count({w}), count(*) FILTER ({w} = 0), "
                       f"count(*) FILTER ({w} < 0) FROM {table} GROUP BY ALL ORDER BY ALL").fetchall()
    # the files, countries and cities of a wave whose every weight is 0 (the wave's others weighted)
    units = con.execute(f"SELECT survey, wave, source_file, concat_ws(' ', country, city), count({w}) "
                        f"FROM {table} GROUP BY survey, wave, source_file, country, city "
                        f"HAVING count({w}) > 0 AND count(*) FILTER ({w} = 0) = count({w}) "
                        "ORDER BY ALL").fetchall()
    design = column != WEIGHT
    used = "indicators weighted by it (--weight weight_design)" if design else "weighted indicators"
    out = []
    for survey, wave, n, zero, negative in rows:
        if n and zero == n:
            out.append(Issue(f"{column} is 0 in all {n:,} rows with a weight; {used} of this "
                             "survey-wave are suppressed (reason weights_all_zero: the weighted total is 0)",
                             code="zero-weights", severity="warning", survey=survey, wave=wave,
                             hint="check the weight variable the crosswalk maps, or use "
                                  + ("the analysis weight" if design else "--weight none")))
        elif n:  # one country or city of a wave weighted 0: its respondents count for nothing
            whole = [(f, u, k) for s_, w_, f, u, k in units if (s_, w_) == (survey, wave)]
            for name, where, k in whole:
                out.append(Issue(f"{column} is 0 in all {k:,} rows of {where or 'the file'} in {name}; those "
                                 f"respondents count for nothing in the wave's {used}",
                                 code="zero-weights", severity="warning", survey=survey, wave=wave,
                                 hint="check the file's weight variable for them"))
            rest = zero - sum(k for _, _, k in whole)
            if rest:  # some respondents weighted 0 among weighted ones: left out of the estimates, counted in n
                out.append(Issue(f"{column} is 0 in {rest:,} of {n:,} rows with a weight; those respondents count "
                                 f"for nothing in the {used}, though they count in each cell's "
                                 "unweighted n", code="zero-weights", severity="warning", survey=survey, wave=wave,
                                 hint="check the weight variable for them: a design that gives some respondents "
                                      "weight 0 leaves them out on purpose; else it is a slip in the file"))
        if negative:
            out.append(Issue(f"{column} is negative in {negative:,} of {n:,} rows; "
                             f"{'estimates weighted by it' if design else 'weighted estimates'} are wrong",
                             code="negative-weights", severity="warning", survey=survey, wave=wave,
                             hint="check the weight variable the crosswalk maps"))
    return out

def fractional_values(rep: Sequence[ReportRow], plan: WavePlan, meta: SourceMeta) -> list[Issue]:
    """A warning per range rule whose variable the file declares of whole numbers (SPSS F2.0, or whole labelled
    codes in the range) but whose rows hold values with decimals (a 0-10 trust scale holding 5.5): stored as they
    are, as the rule's range allows, but more likely a mean, an imputation or a slip than an answer."""
    found: dict[str, dict[str, int]] = {}
    for target, code, value, reason, n in rep:
        tp = plan.targets.get(target)
        if tp is None or tp.kind != "range" or value is None or reason is not None or not code or code[0] == "[":
            continue
        try:
            x = float(code)
        except ValueError:
            continue
        if not x.is_integer():
            found.setdefault(target, {})[code] = found.get(target, {}).get(code, 0) + n
    out = []
    for target, codes in found.items():
        tp = plan.targets[target]
        vm = meta.get(tp.source or "")
        if vm is None or tp.range is None or not whole_numbers(vm, *tp.range):
            continue
        ordered = sorted(codes.items(), key=lambda cn: (-cn[1], float(cn[0])))
        shown = ", ".join(f"{c} ({n:,} row{'s' if n != 1 else ''})" for c, n in ordered[:5]) + more(len(ordered) - 5)
        declared = f"its format {vm.format}" if vm.format and re.fullmatch(r"[A-Z]+\d+\.0", vm.format.upper()) \
            else "its labelled codes"
        out.append(Issue(
            f"{vm.name}: {sum(codes.values()):,} value(s) with decimals in a variable of whole numbers ({declared}): "
            f"{shown}; stored as {target} as they are, the rule's range allowing them", code="fractional-value",
            severity="warning", survey=plan.survey, wave=plan.wave.wave, variable=vm.name,
            path=".".join(map(str, tp.path)), extra={"yaml_path": tp.path, "source_codes": [c for c, _ in ordered]},
            hint="check those rows in the file (a mean, an imputation or a slip, not an answer of the scale); give "
                 "them a reason under the rule's missing: if they are not answers"))
    return out
