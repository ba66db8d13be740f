"""Labels check codes: a file's value label of a code must not name another code's meaning.

Two checks. A country or language code's label must not name another country or language
(:func:`label_issues`); and under a map or range rule, a code must not carry the declared codebook's
label of another code the rule maps differently (:func:`moved_labels`).

Codes are mapped by code, never by label; but a file whose codes follow another scheme (an index:
``8`` labelled 'Croatia') would be mapped through the code table without a word. So the label of
every code a rule maps to a country or language is compared, normalised (case, accents,
punctuation), with the names and aliases of the row it maps to; when it names *another* row
instead, that is a contradiction, an error naming the code, the file's label and the target's.
A label that names no row at all (a spelling the tables do not know) is not judged.
"""

from __future__ import annotations

import re
import unicodedata
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from harmonise.errors import Issue, more
from harmonise.spec.codetables import EUROSTAT_COUNTRY, TableSet
from harmonise.spec.crosswalk import MissingDefaults
from harmonise.spec.expr import ExprError, arithmetic_value, referenced_names
from harmonise.spec.resolve import TargetPlan, WavePlan, classify_missing, reason_of_label
from harmonise.spec.schema import TargetSchema, Variable
from harmonise.spec.source import Code, SourceMeta, VarMeta

if TYPE_CHECKING:
    from harmonise.readers.files import SourceFile

REFERENCES = {"country": "countries", "language": "languages"}
TRUNCATED = 59  # SPSS cut value labels at 60 characters: a label this long may be a name's beginning


@lru_cache(maxsize=1 << 16)
def plain(text: str) -> str:
    """Lower-case ASCII words: 'Côte d’Ivoire' → 'cote d ivoire'."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", " ", ascii_text.lower()).strip()


_Index = tuple[dict[str, frozenset[str]], dict[str, frozenset[str]]]
_INDEXES: weakref.WeakKeyDictionary[TableSet, dict[str, _Index]] = weakref.WeakKeyDictionary()


def _index(tables: TableSet, reference: str) -> _Index:
    """(code → its plain names, plain name → the codes it names), kept while ``tables`` lives."""
    per_set = _INDEXES.setdefault(tables, {})
    if reference not in per_set:
        per_set[reference] = _build_index(tables, reference)
    return per_set[reference]


def _build_index(tables: TableSet, reference: str) -> _Index:
    by_code = {code: frozenset(plain(n) for n in names if plain(n)) for code, names in tables.names(reference).items()}
    by_name: dict[str, set[str]] = {}
    for code, names in by_code.items():
        for n in names:
            by_name.setdefault(n, set()).add(code)
    return by_code, {n: frozenset(c) for n, c in by_name.items()}


def _names(label: str, names: frozenset[str] | set[str]) -> bool:
    p = plain(label)
    return p in names or (len(label) >= TRUNCATED and any(n.startswith(p) for n in names))


def label_issues(var: Variable, tp: TargetPlan, vm: VarMeta, tables: TableSet) -> list[Issue]:
    """One error per source variable whose labels name other countries or languages than the codes map to."""
    reference = REFERENCES.get(var.type)
    if reference is None or not tp.values:
        return []
    by_code, by_name = _index(tables, reference)
    found = []
    for code, label in vm.labels.items():
        target = tp.values.get(code)
        if target is None or code in tp.missing.reasons or not isinstance(target, str) or target not in by_code:
            continue
        if _names(label, by_code[target]):
            continue
        code_label = label.strip()  # a label that is itself a country code ('DE'; Eurostat's EL and UK)
        if reference == "countries" and len(code_label) == 2 and code_label.isalpha() and code_label.isupper():
            iso = EUROSTAT_COUNTRY.get(code_label, code_label)
            if iso in by_code and iso != target:
                found.append(f"{code!r} is labelled '{label}' ({iso}) but maps to {target} "
                             f"({tables.names(reference)[target][0]})")
            if iso in by_code:
                continue
        named = sorted(by_name.get(plain(label), ()))
        if named:
            found.append(f"{code!r} is labelled '{label}' ({', '.join(named)}) but maps to {target} "
                         f"({tables.names(reference)[target][0]})")
    if not found:
        return []
    shown = "; ".join(found[:10]) + more(len(found) - 10, "; and")
    path = (*tp.path, "table" if tp.kind == "table" else "map")
    return [Issue(f"the labels of {vm.name} contradict the codes the rule maps: {shown}", code="label-contradiction",
                  variable=vm.name, path=".".join(map(str, path)), extra={"yaml_path": path, "contradictions": found},
                  hint="the file's codes follow another scheme than the code table: map them by code in the rule's "
                       "map (a wave override), or check that the file is the survey and wave it seems")]


Outcome = tuple[str, object]  # ("value", target value) or ("missing", reason)


def outcome(tp: TargetPlan, code: Code) -> Outcome | None:
    """What the rule makes of a source code: ("missing", reason), ("value", target value), or None (unmapped)."""
    reason = tp.missing.reasons.get(code) or tp.explicit_missing.get(code)
    if reason is not None:
        return ("missing", reason)
    if tp.kind == "map" and code in tp.values:
        return ("value", tp.values[code])
    if tp.kind == "range" and tp.range is not None and isinstance(code, (int, float)) and not isinstance(code, bool):
        if not tp.range[0] <= code <= tp.range[1]:
            return None
        if not tp.transform:
            return ("value", code)
        value = arithmetic_value(tp.transform, code)  # a transform that is not arithmetic: judged untransformed
        return ("value", code if value is None else value)
    return None


def _said(result: Outcome) -> str:
    kind, what = result
    return f"missing ({what})" if kind == "missing" else f"{what:g}" if isinstance(what, float) else repr(what)


def _agrees(tp: TargetPlan, result: Outcome, label: str, schema: TargetSchema | None) -> bool:
    """The file's label of a code names what the rule makes of it (the target code's label, or the missing reason
    the code's label names, which it takes: decision 102): the rule agrees with the file, whatever the declared
    codebook says (a declared codebook is a reference)."""
    if result[0] == "missing":
        return reason_of_label(label) == result[1]
    if schema is None or result[0] != "value" or tp.target not in schema.names:
        return False
    codes = schema.variable(tp.target).codes or {}
    named = codes.get(str(result[1]))
    return named is not None and plain(named) == plain(label)


@dataclass(frozen=True)
class Moved:
    """A file code carrying the declared label of another code the rule maps differently."""

    code: Code
    label: str
    other: Code  # the declared code whose label it carries
    mine: Outcome  # what the rule makes of the code
    theirs: Outcome  # what it makes of the other: what the code's answers mean
    followed: bool = False  # the wave's override maps the code as the rule written for the codebook maps the other


def moved_codes(tp: TargetPlan, declared: VarMeta, found: VarMeta, schema: TargetSchema | None = None,
                written: TargetPlan | None = None) -> list[Moved]:
    """The codes of ``found`` (the file's variable) labelled with the ``declared`` label of another code that
    ``tp`` maps differently; see :func:`moved_labels`. ``written``: the rule without the wave's own override,
    when ``tp`` is one — a code it maps as ``written`` maps the other is ``followed`` (the override was written
    for the recoded file)."""
    out = []
    for code, label, other in swapped_codes(declared, found):
        mine, theirs = outcome(tp, code), outcome(tp, other)
        if mine is None or theirs is None or mine == theirs or _agrees(tp, mine, label, schema):
            continue
        meant = outcome(written, other) if written is not None else None
        out.append(Moved(code, label, other, mine, meant or theirs, followed=meant is not None and mine == meant))
    return out


def relabelled_codes(tp: TargetPlan, declared: VarMeta, found: VarMeta) -> dict[Code, Outcome]:
    """The codes of ``found`` (the file's variable) that ``tp`` leaves unmapped but that carry the declared label of
    exactly one code it maps or gives a reason: what that code's answers mean. A city stored as a number labelled
    'Antwerp' where the declared codebook has the text code 'ANT' so labelled; an edition's new code for a
    declared answer."""
    by_label = _by_label(declared)
    out: dict[Code, Outcome] = {}
    for code, label in found.labels.items():
        named = by_label.get(plain(label), [])
        if len(named) != 1 or outcome(tp, code) is not None:
            continue
        meant = outcome(tp, named[0])
        if meant is not None:
            out[code] = meant
    return out


def moved_in_wave(plan: WavePlan, target: str, declared: VarMeta, found: VarMeta, schema: TargetSchema | None,
                  written: Callable[[str], TargetPlan | None] | None) -> list[Moved]:
    """:func:`moved_codes` of the wave's rule for ``target``, judged against ``written(target)`` (the rule without
    the wave's override) when the wave overrides it; that rule is resolved only when some code moved."""
    tp = plan.targets[target]
    moved = moved_codes(tp, declared, found, schema)
    if moved and written is not None and target in (plan.wave.overrides or {}):
        moved = moved_codes(tp, declared, found, schema, written(target))
    return moved


def _shown(found: list[str]) -> str:
    return "; ".join(found[:6]) + (f"; and {len(found) - 6} more" if len(found) > 6 else "")


def _at(plan: WavePlan, tp: TargetPlan) -> dict[str, Any]:
    """Where an issue about a map or range rule of ``plan`` is located: the rule."""
    path = (*tp.path, "map" if tp.kind == "map" else "range")
    return {"variable": tp.source, "path": ".".join(map(str, path)), "extra": {"yaml_path": path},
            "survey": plan.survey, "wave": plan.wave.wave}


def moved_labels(plan: WavePlan, declared: SourceMeta, meta: SourceMeta, schema: TargetSchema | None = None,
                 written: Callable[[str], TargetPlan | None] | None = None) -> list[Issue]:
    """Errors for map and range rules whose file labels a code with the declared label of *another* code
    that the rule maps differently (codes swapped, a scale reversed, categories renumbered).

    The rule was written for the declared codebook's codes; a file whose code ``a`` carries the declared
    label of code ``b`` (and not its own) holds ``b``'s answers under ``a``, and would be harmonised as
    ``a`` without a word. Labels are compared normalised (:func:`plain`); a declared label two codes share
    does not count, nor does a label the declared codebook does not know (reworded, translated), nor a
    label naming the ``schema`` code the rule gives (the declared codebook, not the rule, is then wrong).

    ``written(target)``: the rule without the wave's own override of the target (None: not overridden). An
    override that maps each such code as that rule maps the code whose label it carries was written for the
    recoded files: not an error, but a warning, since it applies to every file of the wave (decision 64)."""
    out = []
    for target, tp in plan.targets.items():
        if tp.kind not in ("map", "range") or not tp.source:
            continue
        dv, fv = declared.get(tp.source), meta.get(tp.source)
        if dv is None or fv is None or not dv.labels or not fv.labels or dv.type != fv.type:
            continue
        moved = moved_in_wave(plan, target, dv, fv, schema, written)
        if not moved:
            continue
        said = [f"{m.code!r} is labelled '{m.label}', the declared label of {m.other!r}, "
                + (f"and maps to {_said(m.mine)}" if m.followed else f"but maps to {_said(m.mine)}, not {_said(m.theirs)}")
                for m in moved]
        if all(m.followed for m in moved):
            out.append(Issue(
                f"wave {plan.wave.wave}: the wave's rule for {target} maps {tp.source} by this file's labels, which "
                f"differ from {declared.origin}'s: {_shown(said)}; the override applies to every file of wave "
                f"{plan.wave.wave}", code="label-override", severity="warning", **_at(plan, tp),
                hint="a file of the wave with the declared codes (the original release) would be harmonised by the "
                     "override too: keep such files out of this project, or recode the file back"))
            continue
        contradicting = [text for text, m in zip(said, moved) if not m.followed]
        out.append(Issue(
            f"wave {plan.wave.wave}: the file's labels of {tp.source} contradict the codes the rule for {target} maps "
            f"(written for {declared.origin}): {_shown(contradicting)}", code="label-contradiction", **_at(plan, tp),
            hint="the file's codes were recoded (by a researcher or a national release): map the file's own codes by "
                 "their labels in a wave override of the rule (`harmonise adapt` drafts it; `harmonise inspect FILE` "
                 "lists the labels), or harmonise the original release"))
    return [*out, *_moved_inputs(plan, declared, meta)]


def _by_label(declared: VarMeta) -> dict[str, list[Code]]:
    """The declared codes by their normalised label."""
    by_label: dict[str, list[Code]] = {}
    for code, label in declared.labels.items():
        if plain(label):
            by_label.setdefault(plain(label), []).append(code)
    return by_label


def swapped_codes(declared: VarMeta, found: VarMeta) -> list[tuple[Code, str, Code]]:
    """(code, the file's label, the declared code whose label it is) for each code of ``found`` labelled with the
    declared label of another code, not its own (a label two declared codes share does not count)."""
    by_label = _by_label(declared)
    out = []
    for code, label in found.labels.items():
        own = declared.labels.get(code)
        named = by_label.get(plain(label), [])
        if (own is not None and plain(own) == plain(label)) or len(named) != 1 or named[0] == code:
            continue
        out.append((code, label, named[0]))
    return out


def _moved_inputs(plan: WavePlan, declared: SourceMeta, meta: SourceMeta) -> list[Issue]:
    """One error per numeric variable that expressions read whose file labels a code with the declared label of
    another code (`uempla` 0 'Marked', 1 'Not marked'): the expressions, written for the declared codes, would read
    the other code's answers; a warning where the wave overrides every such expression (perhaps for this file).
    Text codes are left out: they are identifiers whose names may repeat (NUTS 'ITI' and 'PT16' are both 'Centro'),
    and a code table's are checked against its names (:func:`label_issues`)."""
    readers: dict[str, list[TargetPlan]] = {}
    for tp in plan.targets.values():
        if tp.kind == "expr" and tp.expr:
            try:
                names = referenced_names(tp.expr)
            except ExprError:  # said by the crosswalk check
                continue
            for name in dict.fromkeys(names):
                readers.setdefault(name, []).append(tp)
    out = []
    for name, tps in readers.items():
        dv, fv = declared.get(name), meta.get(name)
        if dv is None or fv is None or not dv.labels or not fv.labels or dv.type != "numeric" or fv.type != "numeric":
            continue
        # a code labelled with a missing reason is read as missing whichever code it is (its label says so)
        swapped = [s for s in swapped_codes(dv, fv) if reason_of_label(s[1]) is None]
        if not swapped:
            continue
        said = _shown([f"{c!r} is labelled '{label}', the declared label of {other!r}" for c, label, other in swapped])
        targets = ", ".join(tp.target for tp in tps)
        tp = tps[0]
        where: dict[str, Any] = {"variable": fv.name, "path": ".".join(map(str, (*tp.path, "expr"))),
                 "extra": {"yaml_path": (*tp.path, "expr")}, "survey": plan.survey, "wave": plan.wave.wave}
        text = (f"wave {plan.wave.wave}: the file's labels of {fv.name} contradict the codes that the expression(s) "
                f"for {targets} read (written for {declared.origin}): {said}")
        if all(tp.target in (plan.wave.overrides or {}) for tp in tps):
            out.append(Issue(text + "; the wave overrides them", code="label-override", severity="warning", **where,
                             hint="a file of the wave with the declared codes would be read by the overrides too: "
                                  "keep such files out of this project, or recode the file back"))
        else:
            out.append(Issue(text, code="label-contradiction", **where,
                             hint="the file's codes were recoded: recode the variable back to the declared codes in "
                                  "the file, or write a wave override of each expression with the file's codes "
                                  "(`harmonise inspect FILE` lists the labels)"))
    return out


def _listed(found: list[str]) -> str:
    """Six items of ``found``, then how many more (the issue's ``extra`` holds them all)."""
    return "; ".join(found[:6]) + more(len(found) - 6, "; and")


def _read_by(plan: WavePlan, meta: SourceMeta) -> Iterator[tuple[TargetPlan, VarMeta]]:
    """(rule, source variable) for every numeric variable the wave's map, range, table and expression rules read."""
    for tp in plan.targets.values():
        if tp.kind not in ("map", "range", "table", "expr"):
            continue
        for name in tp.variables():
            vm = meta.get(name)
            if vm is not None and vm.type == "numeric":
                yield tp, vm


def letter_sources(plan: WavePlan, meta: SourceMeta) -> list[str]:
    """The variables of a Stata file whose extended missing letters say how the file letters (:func:`lettering`):
    the numeric variables the wave's rules read that leave a letter of the crosswalk's convention unlabelled."""
    convention = plan.crosswalk.missing.extended
    out: list[str] = []
    for _, vm in _read_by(plan, meta):
        if vm.name not in out and any(x not in vm.extended for x in convention):
            out.append(vm.name)
    return out


@dataclass(frozen=True)
class Lettering:
    """How a Stata file's unlabelled missing letters are read (decision 97): ``letters`` (target → variable →
    letter → reason) when in each variable's declared missing codes' order, empty when by the convention."""

    letters: dict[str, dict[str, dict[str, str]]]
    issues: list[Issue]


def _declared_reasons(tp: TargetPlan, dv: VarMeta, defaults: MissingDefaults) -> dict[Code, str]:
    """The reasons of a variable's declared missing codes under ``tp``: the rule's own reasons for the declared
    codes (agea 999 'Not available': not_available, not the survey's default no_answer for 999), then the
    declared codebook's user-missing values and missing labels, as :func:`classify_missing` ranks them."""
    kept = {c: r for c, r in tp.explicit_missing.items()
            if not (isinstance(c, str) and c.startswith(".")) and (c in dv.labels or dv.declared_missing(c))}
    if tp.kind == "expr":
        return classify_missing(defaults, kept, set(), None, dv).reasons
    return classify_missing(defaults, kept, set(tp.values), tp.range, dv).reasons


def file_lettering(plan: WavePlan, src: SourceFile, declared: SourceMeta | None, path: str,
                   held: Callable[[list[str]], Mapping[str, Mapping[str, int]]]) -> Lettering | None:
    """:func:`lettering` of a Stata file ``src`` (None: no variable it reads leaves a letter of the convention
    unlabelled, or no declared codebook to judge by); ``held`` gives the letters of the columns to judge (read, or
    counted already), as the build and `harmonise sql --data` both ask."""
    wanted = [c for c in letter_sources(plan, src.meta) if c not in src.virtual] if declared is not None else []
    return lettering(held(wanted), plan, src.meta, declared, path) if wanted else None


def lettering(held: Mapping[str, Mapping[str, int]], plan: WavePlan, meta: SourceMeta, declared: SourceMeta | None,
              path: str) -> Lettering:
    """How a Stata file letters the missing values of the variables the wave reads, judged from the letters each
    holds (``held``: variable → letter → rows, :meth:`~harmonise.readers.files.SourceFile.letters`).

    ESS ERIC letters .a–.d by reason (not applicable, refusal, don't know, no answer: the crosswalk's
    ``missing.extended``) and labels them; a file converted from SPSS by other tools letters each variable's
    user-missing codes in order (.a its first, sorted by code) and leaves them unlabelled. Only unlabelled letters
    the rule's ``missing`` does not name are judged. The convention is contradicted by a variable holding a letter
    whose conventional reason its declared codes cannot hold; the order by a variable holding a letter beyond its
    number of declared missing codes (a declared range's codes ordered by those it labels; a range labelling none,
    or a variable the declared codebook lacks, has no order). The convention contradicted and the order not: the file is read in order, with a
    warning (``letters-in-order``); both contradicted: an error (``unlabelled-letters``), since either reading
    stores wrong reasons; the convention not contradicted: read by it, without a word."""
    if declared is None or meta.format != "dta":
        return Lettering({}, [])
    defaults = plan.crosswalk.missing
    convention: list[str] = []  # the variables whose letters the convention cannot read
    order: list[str] = []  # those the order cannot read
    read: dict[str, str] = {}  # variable → its letters read in order (said once per variable)
    differ: dict[str, str] = {}  # variable → its letters the two readings give other reasons
    letters: dict[str, dict[str, dict[str, str]]] = {}
    for tp, vm in _read_by(plan, meta):
        mine = {x: n for x, n in sorted(held.get(vm.name, {}).items())
                if x not in vm.extended and f".{x}" not in tp.explicit_missing}
        dv = declared.get(vm.name)
        if not mine or dv is None and tp.kind == "expr":  # (an expression's input it does not declare: drift)
            continue
        if dv is None:
            order.append(f"{vm.name} (not in the declared codebook)")
            continue
        own = _declared_reasons(tp, dv, defaults)
        reasons = set(own.values()) | {r for r in map(reason_of_label, dv.extended.values()) if r}
        wrong = {x: defaults.extended[x] for x in mine if x in defaults.extended and reasons
                 and defaults.extended[x] not in reasons}
        if wrong:
            convention.append(f"{vm.name} " + ", ".join(f".{x} ({mine[x]:,} row(s)) as {r}" for x, r in wrong.items())
                              + f" (its declared codes are {', '.join(sorted(reasons))})")
        # a converter letters the codes the file declares missing, in order: not the codes only the rule makes missing
        # (edulvlb 5555 'Other', not available, is an answer to SPSS); a declared range's codes are ordered by those
        # it labels (emplrel 6-9: 6, 7, 8, 9), and a range labelling none has no order
        codes = sorted(c for c in own if isinstance(c, (int, float)) and not isinstance(c, bool) and dv.declared_missing(c))
        if dv.missing_ranges and not codes:
            lo, hi = dv.missing_ranges[0]
            order.append(f"{vm.name} (its declared missing range {lo:g}–{hi:g} labels no code, so it has no order)")
            continue
        beyond = [x for x in mine if ord(x) - ord("a") >= len(codes)]
        if beyond:
            order.append(f"{vm.name} " + ", ".join(f".{x} ({mine[x]:,} row(s))" for x in beyond)
                         + f" beyond its {len(codes)} declared missing code(s)")
            continue
        given = {chr(ord("a") + i): own[c] for i, c in enumerate(codes[:26])}
        letters.setdefault(tp.target, {})[vm.name] = given
        read.setdefault(vm.name, f"{vm.name} " + ", ".join(f".{x} ({mine[x]:,} row(s)) {given[x]}" for x in mine)
                        + f" (its codes {', '.join(f'{c:g}' for c in codes)})")
        apart = [x for x in mine if x in defaults.extended and given[x] != defaults.extended[x]]
        if apart and vm.name not in differ:
            differ[vm.name] = f"{vm.name} " + ", ".join(
                f".{x} ({mine[x]:,} row(s)) {defaults.extended[x]} by the convention, {given[x]} in order" for x in apart)
    scheme = ", ".join(f".{x} {r}" for x, r in sorted(defaults.extended.items()))
    where: dict[str, Any] = {"survey": plan.survey, "wave": plan.wave.wave}
    if not convention and not order and differ:  # both readings hold the letters, and they give other reasons
        return Lettering({}, [Issue(
            f"{path}: its Stata missing letters carry no labels, and both the crosswalk's convention ({scheme}) and "
            f"each variable's declared missing codes in order (.a the lowest code) can read them; they give other "
            f"reasons for {len(differ)} variable(s): {_listed(list(differ.values()))} — read by the convention, "
            "which the file's letters do not show it follows", code="letters-ambiguous", severity="warning", **where,
            extra={"differ": list(differ.values())},
            hint="if the file letters each variable's missing codes in order (as files converted from SPSS do, and "
                 "as the wave's other Stata files may show: `letters-in-order`), give the letters their reasons in "
                 "the rules' `missing` (a wave override, e.g. {'.a': refused, '.b': dont_know, '.c': no_answer})")])
    if not convention:
        return Lettering({}, [])
    if not order:
        return Lettering(letters, [Issue(
            f"{path}: its Stata missing letters carry no labels and do not follow the crosswalk's convention "
            f"({scheme}) for {len(convention)} variable(s): {_listed(convention)}; every variable read holds only "
            "letters within its declared missing codes, so the file letters each variable's missing codes in order "
            f"(.a the lowest code), as files converted from SPSS by other tools do, and is read so: {_listed(list(read.values()))}",
            code="letters-in-order", severity="warning", **where,
            extra={"convention": convention, "in_order": list(read.values())},
            hint="if the file letters otherwise, give the letters their reasons in the rules' `missing` (a wave "
                 "override, e.g. {'.a': refused, '.b': dont_know, '.c': no_answer}), or harmonise the SPSS release")])
    return Lettering({}, [Issue(
        f"{path}: its Stata missing letters carry no labels, and neither the crosswalk's convention ({scheme}) nor "
        f"each variable's declared missing codes in order (.a the lowest code) can read them: the convention gives "
        f"{len(convention)} variable(s) reasons their declared codes cannot hold: {_listed(convention)}; the order "
        f"cannot read {len(order)} variable(s): {_listed(order)} — their reasons would be stored wrongly either way",
        code="unlabelled-letters", **where, extra={"convention": convention, "in_order": order},
        hint="give the letters their reasons in the rules' `missing` (a wave override, e.g. {'.a': refused, '.b': "
             "dont_know, '.c': no_answer}), or harmonise the SPSS release or a Stata file with labelled letters")])


def unread_letter_labels(rep: Iterable[tuple[str, str | None, str | None, str | None, int]], plan: WavePlan,
                         meta: SourceMeta, path: str) -> list[Issue]:
    """A warning when a Stata file labels the extended missing letters its rows hold with labels that name no
    missing reason harmonise reads (:func:`~harmonise.spec.resolve.reason_of_label`), so that the crosswalk's
    convention (``missing.extended``) still gives their reasons.

    A labelled letter says what it means, and the label wins over the convention when it is read ('Refusal',
    'Odmowa'); a label in a wording or language the list lacks ('Fikri yok') is a statement harmonise cannot
    read, and the convention may contradict it (.a 'Fikri yok', don't know, stored as not applicable). Unlike
    an unlabelled letter (:func:`lettering`) this needs no declared codebook: every such letter with
    rows is named, with its label, rows and the reason it was given. A rule's own ``missing`` for the letter
    settles it."""
    used: dict[str, dict[str, int]] = {}
    for target, code, _, _, n in rep:
        if n and code is not None and len(code) == 2 and code[0] == "." and code[1].isalpha():
            used.setdefault(target, {})[code[1]] = used.get(target, {}).get(code[1], 0) + n
    convention = plan.crosswalk.missing.extended
    found = []
    for target, letters in used.items():
        tp = plan.targets.get(target)
        if tp is None or tp.kind not in ("map", "range", "table") or not tp.source:
            continue
        vm = meta.get(tp.source)
        if vm is None:
            continue
        unread = {x: vm.extended[x] for x in letters if x in vm.extended and x in convention
                  and f".{x}" not in tp.explicit_missing and reason_of_label(vm.extended[x]) is None}
        if unread:
            found.append(f"{vm.name} " + ", ".join(f".{x} '{label}' ({letters[x]:,} row(s)) as {convention[x]}"
                                                   for x, label in sorted(unread.items())))
    if not found:
        return []
    found.sort()
    return [Issue(f"{path}: the labels of its Stata missing letters name no missing reason harmonise reads, so the "
                  f"crosswalk's convention gives their reasons, whatever the labels say: {_shown(found)} — where a "
                  "label names another reason, those rows' reasons are stored wrongly", code="unread-letter-labels",
                  severity="warning", survey=plan.survey, wave=plan.wave.wave,
                  hint="give the letters the reasons their labels name in the rules' `missing` (a wave override, "
                       "e.g. {'.a': refused, '.b': dont_know, '.c': no_answer}); labels read as reasons: 'Refusal', "
                       "\"Don't know\", 'No answer', 'Not applicable', 'Not available' and their usual wordings in "
                       "the ESS languages (spec.resolve.NATIONAL_MISSING_LABELS)")]
