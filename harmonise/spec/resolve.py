"""Resolve a crosswalk wave into a per-target plan, and classify source codes.

Resolution applies wave overrides, expands code tables and decides, for every
source code the metadata knows, whether it is a value or which missing reason it
carries. The precedence is fixed and documented:

1. the rule's own ``map``/``range`` (valid codes) and its explicit ``missing``;
2. the code table's ``map``/``missing`` (for ``table`` rules);
3. survey-level ``missing.codes`` — only for codes the source declares missing
   or labels with a missing reason's name ('Refusal', 'Odmowa': :func:`reason_of_label`; a code labelled
   as an answer, 'Big city centre', is no missing code), and never for a valid code of the rule;
4. anything else observed is *unmapped* and fails validation.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeGuard

from pydantic import ValidationError

from harmonise.spec.codetables import TableSet
from harmonise.spec.crosswalk import Crosswalk, MissingDefaults, Rule, TargetValue, Wave, merge_override
from harmonise.spec.schema import TargetSchema
from harmonise.spec.source import Code, VarMeta, find_variable, norm_code

SYSMIS_KEY = "."


@dataclass
class SourceMissing:
    """How one source variable's missing codes map onto reasons in one target rule."""

    reasons: dict[Code, str] = field(default_factory=dict)
    extended: dict[str, str] = field(default_factory=dict)
    system: str = "not_available"
    ranges: list[tuple[float, float]] = field(default_factory=list)
    values: list[Code] = field(default_factory=list)  # discrete user-missing values the file declares


@dataclass
class TargetPlan:
    """One target in one wave, fully resolved."""

    target: str
    kind: str  # map | range | table | expr | constant | not_asked | derived | automatic | absent | row_id
    path: tuple[str | int, ...] = ()
    source: str | None = None
    values: dict[Code, TargetValue] = field(default_factory=dict)
    range: tuple[float, float] | None = None
    transform: str | None = None
    expr: str | None = None
    constant: TargetValue | None = None
    not_asked: str | None = None
    table: str | None = None
    quality: str | None = None
    notes: str | None = None
    explicit_missing: dict[Code, str] = field(default_factory=dict)
    missing: SourceMissing = field(default_factory=SourceMissing)
    alternative: int = 0  # which of the rule's alternatives is in force (0: the rule itself)
    absent: tuple[str, ...] = ()  # kind absent or row_id: the rule's variables the file lacks
    lacking: tuple[tuple[str, ...], ...] = ()  # kind absent: what the file lacks for the rule and each alternative

    def variables(self) -> list[str]:
        """The source variables the resolved rule reads."""
        from harmonise.spec.expr import ExprError, referenced_names

        if self.kind in ("map", "range", "table") and self.source:
            return [self.source]
        if self.kind == "expr" and self.expr:
            try:
                return referenced_names(self.expr)
            except ExprError:
                return []
        return []

    @property
    def rule_text(self) -> str:
        """A one-line description of the rule (for lineage and codebooks)."""
        k = self.kind
        if k == "not_asked":
            return f"not asked: {self.not_asked}"
        if k == "constant":
            return f"constant {self.constant!r}"
        if k == "expr":
            return f"expr: {self.expr}"
        if k == "derived":
            return f"derived: {self.expr}"
        if k == "automatic":
            return "set by harmonise from the crosswalk"
        if k == "absent":
            return f"not available in this file (it lacks {', '.join(self.absent)})"
        if k == "row_id":
            return f"file name and row number (the file lacks {', '.join(self.absent)})"
        if k == "range":
            t = f", transform {self.transform}" if self.transform else ""
            return f"{self.source} in [{self.range[0]:g}, {self.range[1]:g}]{t}" if self.range else str(self.source)
        if k == "table":
            return f"{self.source} via table {self.table}"
        text = f"{self.source} recoded ({len(self.values)} codes)"
        return text if not self.alternative else f"{text} (alternative {self.alternative})"


@dataclass
class WavePlan:
    survey: str
    wave: Wave
    crosswalk: Crosswalk
    targets: dict[str, TargetPlan]
    # a Stata file whose unlabelled letters follow each variable's declared missing codes in order (decision 97):
    # target → source variable → letter → reason, read below the file's letter labels and the rule's own `missing`
    letters: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)

    def sources(self) -> list[str]:
        """Source variables the wave reads, in first-use order."""
        out: list[str] = []
        for t in self.targets.values():
            for n in t.variables():
                if n not in out:
                    out.append(n)
        return out


def _in_range(code: Code, rng: tuple[float, float] | None) -> bool:
    return rng is not None and isinstance(code, (int, float)) and rng[0] <= code <= rng[1]


MISSING_LABELS = {  # a missing code's label, lower-case words → the missing reason it names
    "not applicable": "not_applicable", "inapplicable": "not_applicable", "refusal": "refused",
    "refused": "refused", "don t know": "dont_know", "dont know": "dont_know", "do not know": "dont_know",
    "no answer": "no_answer", "not answered": "no_answer", "not available": "not_available",
    # the other surveys' missing codes (EVS, EU-MIDIS), as their codebooks label them
    "not asked": "not_asked", "item not included": "not_asked", "not on route": "not_applicable",
    "other missing": "other_missing", "does not understand the question": "other_missing", "invalid": "invalid",
    # EVS 2017's mixed-mode codes (ZA7500: -8, -9, -10), as GESIS labels them and as the project's tables do
    "follow up non response": "no_answer", "no follow up": "not_asked", "multiple answers mail": "invalid",
    "multiple answers": "invalid",
}
# The same labels as national releases and translated extracts of the ESS write them, in the ESS languages:
# whole labels only (normalised like the English ones, accents dropped), and only wordings that are never an
# answer category. Left out on purpose: "trifft nicht zu"/"nicht zutreffend" (German agreement-scale points),
# "non concerné", "ikke relevant", "ei koske" (they answer a question too), "trudno powiedzieć"
# and "важко сказати"/"затрудняюсь ответить" (hard to say: often a substantive middle answer), abbreviations
# (NSP, NS/NC, k.A.) and anything naming two reasons at once.
NATIONAL_MISSING_LABELS = {
    "refused": [
        "verweigert", "antwort verweigert", "refus", "refuse", "rechaza", "se niega", "rifiuta", "rifiuto",
        "recusa", "weigert", "weigering", "odmowa", "odmowa odpowiedzi", "odmitl", "odmitnuti", "odmietol",
        "odmietnutie", "zavrnitev", "odbija", "megtagadta", "kieltaytyi", "vagrar", "nekter", "nægter",
        "keeldus", "atsisake", "atteicas", "отказ", "отказ от ответа", "відмова", "відмова від відповіді",
        "αρνηση",
    ],
    "dont_know": [
        "weiss nicht", "ne sait pas", "no sabe", "non sa", "nao sabe", "weet niet", "weet het niet", "nie wiem",
        "nevi", "nevim", "nevie", "neviem", "ne vem", "ne zna", "ne znam", "nem tudja", "nem tudom",
        "ei osaa sanoa", "en osaa sanoa", "vet ej", "vet inte", "vet ikke", "ved ikke", "ei tea", "nezino",
        "nezina", "не знаю", "не знам", "δεν ξερω", "δεν γνωριζω",
    ],
    "no_answer": [
        "keine angabe", "keine antwort", "sans reponse", "pas de reponse", "no contesta", "no responde",
        "non risponde", "nessuna risposta", "nao responde", "sem resposta", "geen antwoord", "brak odpowiedzi",
        "bez odpovedi", "bez odpovede", "brez odgovora", "bez odgovora", "nem valaszolt", "nincs valasz",
        "ei vastausta", "inget svar", "ikke svar", "intet svar", "ei vastanud", "neatsake", "nav atbildes",
        "нет ответа", "немає відповіді", "без отговор", "δεν απαντησε",
    ],
    "not_applicable": [
        "sans objet", "no procede", "no aplicable", "no aplica",
        "non applicabile", "nao aplicavel", "nao se aplica", "niet van toepassing",
        "nie dotyczy", "netyka se", "netyka sa", "nije primjenjivo", "nem vonatkozik ra",
        "ej tillamplig", "ikke aktuelt", "ei kohaldu", "netaikoma", "neattiecas",
        "неприменимо", "не применимо", "не застосовується", "неприложимо", "δεν εφαρμοζεται",
    ],
}
LABEL_REASONS = {**{w: r for r, words in NATIONAL_MISSING_LABELS.items() for w in words}, **MISSING_LABELS}


def label_words(label: str) -> str:
    """A label's lower-case words, accents and a remark in brackets dropped: "Don't know (spontaneous)" →
    'don t know', 'Weiß nicht' → 'weiss nicht', 'Não sabe' → 'nao sabe' (letters of other scripts are kept:
    'Відмова' → 'відмова')."""
    label = re.sub(r"\([^()]*\)|\[[^\[\]]*\]", " ", label).strip() or label
    text = "".join(ch for ch in unicodedata.normalize("NFKD", label.casefold()) if not unicodedata.combining(ch))
    return " ".join("".join(ch if ch.isalnum() else " " for ch in text).split())


@functools.lru_cache(maxsize=8192)  # a file repeats its few missing labels on hundreds of variables
def reason_of_label(label: str) -> str | None:
    """The missing reason a label names unambiguously ('Refusal' → refused, 'Odmowa' → refused), else None.

    The whole label must be one of the known wordings (:data:`MISSING_LABELS`, in English, and
    :data:`NATIONAL_MISSING_LABELS`, as national releases write them): 'No answer/refusal' names two reasons,
    'Other' none."""
    return LABEL_REASONS.get(label_words(label))


def special_missing_key(code: object) -> TypeGuard[str]:
    """Whether a rule's ``missing`` key names system missing ('.') or a Stata extended missing letter ('.a')
    rather than a source code."""
    return isinstance(code, str) and (code == SYSMIS_KEY or (len(code) == 2 and code[0] == "." and code[1].isalpha()))


def classify_missing(defaults: MissingDefaults, explicit: dict[Code, str], valid: set[Code],
                     rng: tuple[float, float] | None, meta: VarMeta | None, own: set[Code] | None = None,
                     letters: Mapping[str, str] | None = None) -> SourceMissing:
    """Combine explicit, default and declared missing information for one source variable.

    A code gets a reason from the rule's ``missing``, else (a survey-level default code the file declares missing
    or labels as missing, outside the rule's valid codes and range) the reason its label names, or else its default
    reason (decision 102: 'No answer' at the convention's 6 is no answer), else from its label when
    the label names one missing reason ('Don't know'): a code the file also declares missing takes it even inside a
    range rule's range and over a code table's value (``own``: the rule's own map codes, which it does not
    override; the file's two statements agree, as a Stata letter's label is read), one it only labels so takes it
    outside the rule's valid codes and range (a Stata file cannot declare codes missing). ``letters``: the Stata
    letters' reasons in the file's own order (decision 97), instead of the survey's convention ``defaults.extended``;
    the file's labels of its letters and the rule's ``missing`` still win."""
    out = SourceMissing(system=defaults.system, extended={**defaults.extended, **(letters or {})})
    if meta is not None:
        out.ranges = list(meta.missing_ranges)
        out.values = list(meta.missing_values)
        for letter, label in meta.extended.items():  # a file that labels its letters says what they mean
            reason = reason_of_label(label)
            if reason is not None:
                out.extended[letter] = reason
    for code, reason in explicit.items():
        if code == SYSMIS_KEY:
            out.system = reason
        elif special_missing_key(code):
            out.extended[code[1]] = reason
        else:
            out.reasons[code] = reason
    for reason, codes in defaults.codes.items():
        for raw in codes:
            code = norm_code(raw)
            if code in out.reasons or code in valid or _in_range(code, rng):
                continue
            if meta is None:
                continue
            if (meta.type == "string") != isinstance(code, str):
                continue
            if meta.declared_missing(code) or default_label_agrees(meta.labels.get(code)):
                # the file's label names the reason where it names one (decision 102): a file numbered anew in its
                # labels' order holds 'No answer' at the convention's 6 (not applicable)
                out.reasons[code] = reason_of_label(meta.labels.get(code) or "") or reason
    if meta is not None:  # a code the file labels with one missing reason (and declares missing, or lies outside)
        kept = valid if own is None else own
        for code, label in meta.labels.items():
            if code in out.reasons or (meta.type == "string") != isinstance(code, str) or \
                    (said := reason_of_label(label)) is None:
                continue
            if meta.declared_missing(code) and code not in kept or \
                    not meta.declared_missing(code) and code not in valid and not _in_range(code, rng):
                out.reasons[code] = said
    return out


def default_label_agrees(label: str | None) -> bool:
    """Whether a survey-level default missing code the file labels, but does not declare missing, is missing
    by its label: the label names a missing reason (any one; the code's default reason is used, as for a
    declared code, so the SPSS and Stata releases of a file agree). A code labelled as an answer ('Big city
    centre', 'Estonia', a Stata ``encode``'s 'RU') is an answer the rule must map, else an ``unmapped-code``."""
    return label is not None and reason_of_label(label) is not None


@dataclass(frozen=True)
class RuleAt:
    """The rule in force for one target in one wave, before resolution.

    ``rule`` is None when the target has no rule (automatic and derived targets, a forgotten
    target) or when the wave's override does not validate (``error`` holds why); ``path`` is where
    the rule is written (``targets.<name>`` or ``waves.<i>.overrides.<name>``).
    """

    target: str
    rule: Rule | None
    path: tuple[str | int, ...]
    error: ValidationError | None = None


def override_layers(cw: Crosswalk, wave: Wave) -> list[tuple[tuple[str | int, ...], dict[str, dict[str, Any] | None]]]:
    """The overrides in force in ``wave``, in the order they apply, with their paths: every period
    naming the wave (in file order), then the wave's own."""
    layers: list[tuple[tuple[str | int, ...], dict[str, dict[str, Any] | None]]] = [
        (("periods", i, "overrides"), p.overrides) for i, p in enumerate(cw.periods) if wave.wave in p.waves]
    layers.append((("waves", cw.waves.index(wave), "overrides"), wave.overrides))
    return layers


def wave_rules(cw: Crosswalk, wave: Wave, schema: TargetSchema) -> list[RuleAt]:
    """The rule of every schema target in ``wave``: the base rule with the periods' and the wave's overrides
    applied in turn (the path is the last override's)."""
    layers = override_layers(cw, wave)
    out = []
    for var in schema.variables:
        rule: Rule | None = cw.targets.get(var.name)
        path: tuple[str | int, ...] = ("targets", var.name)
        error: ValidationError | None = None
        for prefix, overrides in layers:
            if var.name not in overrides:
                continue
            path = (*prefix, var.name)
            try:
                rule = Rule.model_validate(merge_override(rule, overrides[var.name]))
            except ValidationError as exc:
                rule, error = None, exc
                break
        out.append(RuleAt(var.name, rule, path, error))
    return out


ROW_ID_TARGET = "respondent_id"  # made from file name and row number when a file lacks the key variables


def resolve_wave(cw: Crosswalk, wave: Wave, schema: TargetSchema, tables: TableSet,
                 meta: dict[str, VarMeta] | None = None, supplied: Mapping[str, TargetValue] | None = None) -> WavePlan:
    """Resolve every schema target for ``wave``; ``meta`` (source variables) refines missing codes.

    With ``meta``, each rule's first alternative whose variables ``meta`` holds is used; a target
    none of whose alternatives the file can serve is ``absent`` (not available in that file), or
    takes its value from ``supplied`` (target → value the user gave, e.g. ``--country``); the
    respondent id is made from file and row (``row_id``). Resolution never reports: a malformed
    rule resolves as far as it can (or not at all) and :mod:`harmonise.checks.rules` says what is
    wrong with it.
    """
    plans: dict[str, TargetPlan] = {}
    for at in wave_rules(cw, wave, schema):
        var = schema.variable(at.target)
        if at.error is not None:
            continue
        if at.rule is None:
            if var.automatic:
                plans[var.name] = TargetPlan(var.name, "automatic")
            elif var.derived and var.derive is not None:
                plans[var.name] = TargetPlan(var.name, "derived", expr=var.derive.expr, quality="recoded")
            continue
        index, rule, path, absent = _choose(at.rule, at.path, meta)
        if absent:
            if supplied and var.name in supplied:
                plans[var.name] = TargetPlan(var.name, "constant", path=at.path, constant=supplied[var.name],
                                             quality="exact", notes="supplied by the user for this file",
                                             absent=tuple(absent))
            else:
                plans[var.name] = TargetPlan(var.name, "row_id" if var.name == ROW_ID_TARGET else "absent",
                                             path=at.path, quality="approximate" if var.name == ROW_ID_TARGET else None,
                                             source=rule.source, expr=rule.expr, absent=tuple(absent),
                                             lacking=_lacking(at.rule, meta))
            continue
        plans[var.name] = _plan(var.name, rule, path, cw.missing, tables, meta)
        plans[var.name].alternative = index
    return WavePlan(cw.survey, wave, cw, plans)


def without_override(cw: Crosswalk, wave: Wave, target: str, schema: TargetSchema, tables: TableSet,
                     meta: dict[str, VarMeta] | None = None, supplied: Mapping[str, TargetValue] | None = None
                     ) -> TargetPlan | None:
    """``target`` resolved for ``wave`` as if the wave did not override it (the base rule and the periods'
    overrides): the rule an override replaces."""
    bare = wave.model_copy(update={"overrides": {k: v for k, v in (wave.overrides or {}).items() if k != target}})
    others = cw.model_copy(update={"waves": [bare if w is wave else w for w in cw.waves]})
    return resolve_wave(others, bare, schema, tables, meta, supplied).targets.get(target)


def alternatives(rule: Rule) -> list[Rule | ValidationError]:
    """The rule without its alternatives, then each alternative applied to it (or why it does not validate)."""
    base = Rule.model_validate(rule.model_dump(exclude_none=True, exclude={"alternatives"}))
    out: list[Rule | ValidationError] = [base]
    for alt in rule.alternatives or []:
        if "quality" not in alt and "not_asked" not in alt and base.quality is not None:  # the same target from
            alt = {**alt, "quality": base.quality}  # other variables: as exact as the rule unless it says so
        try:
            out.append(Rule.model_validate(merge_override(base, alt)))
        except ValidationError as exc:
            out.append(exc)
    return out


def rule_variables(rule: Rule) -> list[str]:
    """The source variables a rule reads (its source, or its expression's names)."""
    from harmonise.spec.expr import ExprError, referenced_names

    if rule.expr is not None:
        try:
            return referenced_names(rule.expr)
        except ExprError:
            return []
    if rule.kind in ("map", "range", "table") and rule.source:
        return [rule.source]
    return []


def _lacking(rule: Rule, meta: dict[str, VarMeta] | None) -> tuple[tuple[str, ...], ...]:
    """What a file lacks for the rule and for each of its alternatives, each once (the rule's first)."""
    if meta is None:
        return ()
    out: dict[tuple[str, ...], None] = {}
    for option in alternatives(rule):
        if isinstance(option, Rule):
            lacks = tuple(n for n in rule_variables(option) if find_variable(meta, n) is None)
            if lacks:
                out.setdefault(lacks)
    return tuple(out)


def _choose(rule: Rule, path: tuple[str | int, ...], meta: dict[str, VarMeta] | None
            ) -> tuple[int, Rule, tuple[str | int, ...], list[str]]:
    """(index, rule, path, variables the file lacks): the first alternative the file can serve, else the
    rule itself with its absent variables (nothing absent without metadata)."""
    options = alternatives(rule)
    first = options[0]
    assert isinstance(first, Rule)
    if meta is None:
        return 0, first, path, []
    for i, option in enumerate(options):
        if isinstance(option, Rule) and all(find_variable(meta, n) is not None for n in rule_variables(option)):
            return i, option, (path if i == 0 else (*path, "alternatives", i - 1)), []
    return 0, first, path, [n for n in rule_variables(first) if find_variable(meta, n) is None]


def rule_kinds(rule: Rule) -> list[str]:
    """The rule kinds ``rule`` sets (a ``map`` beside a ``table`` adds codes to it: not a kind of its own)."""
    kinds = [k for k in ("not_asked", "expr", "constant", "table", "range") if getattr(rule, k) is not None]
    if rule.map is not None and "table" not in kinds:
        kinds.append("map")
    return kinds


def _plan(name: str, rule: Rule, path: tuple[str | int, ...], defaults: MissingDefaults, tables: TableSet,
          meta: dict[str, VarMeta] | None) -> TargetPlan:
    kind = rule.kind
    plan = TargetPlan(name, kind, path=path, source=rule.source, range=rule.range, transform=rule.transform,
                      expr=rule.expr, constant=rule.constant, not_asked=rule.not_asked, table=rule.table,
                      quality=rule.quality, notes=rule.notes)
    if len(rule_kinds(rule)) != 1 or kind == "not_asked":
        return plan
    if kind in ("map", "range", "table") and not rule.source:
        return plan
    explicit = {norm_code(k): v for k, v in (rule.missing or {}).items()}
    values: dict[Code, Any] = {}
    if kind == "table":
        table = tables.code_map(rule.table or "")
        if table is None:
            return plan
        values.update(table.normalised_map())
        tmiss = table.normalised_missing()
        for k in list(tmiss):
            if k in explicit or k in (rule.map or {}):
                tmiss.pop(k)
        explicit = {**tmiss, **explicit}
    for k, v in (rule.map or {}).items():
        values[norm_code(k)] = v
    plan.values = values
    twice = mapped_twice(rule)
    for code in list(explicit):
        if code in values and code not in twice:
            values.pop(code)  # explicit per-variable missing beats a table's value
    plan.explicit_missing = explicit
    src_meta = find_variable(meta, rule.source) if (meta is not None and rule.source) else None
    own = {norm_code(k) for k in (rule.map or {})}
    plan.missing = classify_missing(defaults, explicit, set(values), rule.range, src_meta, own)
    for code in [c for c in values if c in plan.missing.reasons and c not in own]:
        values.pop(code)  # a table's code the file declares missing and labels so: missing (EU-MIDIS 99 'Don't know')
    return plan


def mapped_twice(rule: Rule) -> list[Code]:
    """Codes a rule's own ``map`` and ``missing`` both claim."""
    in_map = {norm_code(k) for k in (rule.map or {})}
    return sorted({k for k in in_map if k in {norm_code(x) for x in (rule.missing or {})}}, key=str)


def expr_source_missing(defaults: MissingDefaults, meta: VarMeta | None, explicit: dict[Code, str] | None = None,
                        letters: Mapping[str, str] | None = None) -> SourceMissing:
    """Missing classification of a source variable referenced from an expression (no valid domain); ``letters``:
    its Stata letters read in the file's order (:func:`letters_in_order`)."""
    return classify_missing(defaults, explicit or {}, set(), None, meta, letters=letters)


def letters_in_order(plan: WavePlan, letters: dict[str, dict[str, dict[str, str]]],
                     meta: dict[str, VarMeta]) -> WavePlan:
    """``plan`` for a Stata file whose unlabelled letters follow each variable's declared missing codes in order
    (decision 97): ``letters`` is target → source variable → letter → reason. A map, range or table rule's letters
    take those reasons unless the file labels the letter with a reason or the rule's own ``missing`` names it (as
    :func:`classify_missing` ranks them); an expression's inputs take them when compiled (``WavePlan.letters``).
    The plan given is left as it was (it may be shared by other files of the same metadata)."""
    targets = dict(plan.targets)
    for target, by_variable in letters.items():
        tp = targets.get(target)
        if tp is None or tp.kind not in ("map", "range", "table") or not tp.source:
            continue
        vm = find_variable(meta, tp.source)
        mine = by_variable.get(vm.name if vm is not None else tp.source, {})
        extended = dict(tp.missing.extended)
        for letter, reason in mine.items():
            labelled = vm is not None and reason_of_label(vm.extended.get(letter) or "") is not None
            if not labelled and f".{letter}" not in tp.explicit_missing:
                extended[letter] = reason
        targets[target] = replace(tp, missing=replace(tp.missing, extended=extended))
    return replace(plan, targets=targets, letters=letters)
