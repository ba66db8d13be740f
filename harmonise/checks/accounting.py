"""Every source value accounted for: checks on a wave's harmonisation report, row counts and keys.

The pipeline counts every (target, source code → value | missing reason) of a file; these checks
turn what must not happen into issues: a code nobody mapped, a target that did not account for
every row, a header that promised more rows than were read, a respondent id used twice, a
harmonised value pandera refused. Issues carry ``extra['yaml_path']`` where a rule is at fault.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from harmonise.checks.crosswalk import codes_text, unaccounted
from harmonise.errors import Issue, more
from harmonise.spec.codetables import EUROSTAT_COUNTRY
from harmonise.spec.resolve import TargetPlan, WavePlan
from harmonise.spec.schema import UNMAPPED
from harmonise.spec.source import Code, SourceMeta, VarMeta

ReportRow = tuple[str, str | None, str | None, str | None, int]  # target, source code, value, reason, n
Labels = dict[str, tuple[str, dict[str, str]]]  # target → (source variables, code text → source label)


def clip(value: object, limit: int = 60) -> str:
    """A value short enough for a message: long strings keep their start and say how long they were."""
    text = str(value)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters)"


def _cause(tp: TargetPlan, codes: list[tuple[str | None, int]], meta: SourceMeta | None,
           labels: dict[str, str] | None = None) -> tuple[str, str] | None:
    """Why a rule left ``codes`` unmapped, when the rule says more than "not in the map": (clause, hint);
    ``labels``: the source variable's value labels (code text → label)."""
    vm = meta.get(tp.source) if meta is not None and tp.source else None
    if vm is not None and codes and all(c is not None and (n := _number(c) if vm.type != "string" else c) is not None
                                        and vm.declared_missing(n) for c, _ in codes):
        said = (labels or {}).get(codes[0][0] or "")
        return ((f": {vm.name} declares {'it' if len(codes) == 1 else 'them'} user-missing, but "
                 + (f"a label such as '{said}' names no one missing reason" if said else "without a label naming "
                    "its reason")),
                ("give the codes their reason in the survey's `missing: codes:` (every rule reading such codes) or "
                 "in this rule's `missing`"))
    if tp.kind == "range" and tp.range is not None:
        lo, hi = tp.range
        if all(_number(c) is not None and not lo <= _number(c) <= hi for c, _ in codes):  # type: ignore[operator]
            return (f", outside the rule's range [{lo:g}, {hi:g}]",
                    "give the codes a missing reason (the rule's `missing`), or widen the range if they are valid")
    if tp.kind == "table" and all(c in EUROSTAT_COUNTRY for c, _ in codes):
        said = ", ".join(f"{c} for {EUROSTAT_COUNTRY[c]}" for c in dict.fromkeys(c for c, _ in codes) if c)
        return ((f": they are Eurostat's country codes ({said}), and the rule's table {tp.table} maps ISO 3166-1 "
                 "codes"), (f"recode the variable in the file ({said.replace(' for ', ' → ')}), or map these codes "
                            "in a wave override"))
    if tp.kind == "table" and all(c is not None and len(c) == 3 and c.isalpha() and c.isupper() for c, _ in codes):
        clause = (f": they read as ISO 3166-1 alpha-3 codes ({codes[0][0]}), and the rule's table {tp.table} maps "
                  "its own codes")
        return clause, (f"recode the variable in the file to the codes {tp.table} maps (mappings/tables/countries.yaml "
                        "gives each alpha-3 code's alpha-2), or map these codes in a wave override")
    if tp.kind == "table" and all(c is not None and len(c) == 2 and c.isalpha() and c.islower() for c, _ in codes):
        return ((f": they read as ISO codes in lower case ({codes[0][0]}), and the rule's table {tp.table} maps them "
                 "in upper case"),
                (f"upper-case the variable in the file (Stata `replace {tp.source} = upper({tp.source})`, SPSS "
                 f"`COMPUTE {tp.source} = UPCASE({tp.source})`), or map these codes in a wave override"))
    if tp.kind == "table" and labels and all(_number(c) is not None and (lab := labels.get(c or "")) is not None
                                             and 2 <= len(lab) <= 3 and lab.isalpha() and lab.isupper()
                                             for c, _ in codes):
        first = codes[0][0] or ""
        return ((f": they are numbers whose value labels are codes ({first} labelled '{labels[first]}'), as a Stata "
                 "`encode` of the text variable writes them"),
                (f"store the labels as the values (Stata `decode {tp.source}, generate(…)`), or map these numbers in "
                 "a wave override"))
    if tp.kind == "map" and vm is not None and vm.type == "string":
        keys = {_text(k) for k in tp.values if isinstance(k, (int, float)) and not isinstance(k, bool)}
        # the map's codes written as text, also with decimals or spaces ('1.0', ' 1')
        if any(c in keys or (n := _number(c)) is not None and _text(n) in keys for c, _ in codes):
            return ((f": {vm.name} holds text in this file and the rule maps numbers (the codes are the map's, "
                    "written as text)"), (f"make {vm.name} numeric in the file (Stata `destring`, SPSS `ALTER TYPE`), or "
                    "map its text codes in a wave override"))
    if tp.kind == "map" and vm is not None and vm.type != "string":
        rule_codes: set[float] = {float(k) for k in [*tp.values, *tp.missing.reasons]
                                  if isinstance(k, (int, float)) and not isinstance(k, bool)}
        near = [(c, rc) for c, _ in codes if (num := _number(c)) is not None and num not in rule_codes
                for rc in rule_codes if abs(num - rc) <= NOISE * max(1.0, abs(rc))]
        if near and len({c for c, _ in near}) == len(codes):
            code, key = near[0]
            return (f": they differ from the rule's codes by a rounding error ({code} for {_text(key)})",
                    (f"round {vm.name} in the file (Stata `replace {vm.name} = round({vm.name})`, SPSS "
                     f"`COMPUTE {vm.name} = RND({vm.name})`); a code that is not whole is not guessed"))
    return None


NOISE = 1e-6  # a code this close (relatively) to a map's code is that code with a rounding error


def _number(code: str | None) -> float | None:
    try:
        return float(code) if code is not None else None
    except ValueError:
        return None


def unmapped_codes(rep: Sequence[ReportRow], plan: WavePlan, labels: Labels,
                   meta: SourceMeta | None = None) -> list[Issue]:
    """One error per target whose rows hold source codes that reached no value and no missing reason
    (``meta``: the file's, to say when its variable holds text where the rule maps numbers)."""
    found: dict[str, list[tuple[str | None, int]]] = {}
    for target, code, value, reason, n in rep:
        kind = plan.targets[target].kind
        # a required target has no missing reason to mark a code nobody mapped: its value is null (pandera's
        # not_nullable says so without naming the code); derived targets inherit their inputs' gaps
        if reason == UNMAPPED and kind != "derived" or \
                value is None and reason is None and kind in ("map", "table", "range"):
            found.setdefault(target, []).append((code, n))
    out = []
    for target, codes in found.items():
        tp = plan.targets[target]
        srcvars, labs = labels.get(target, ("", {}))

        total = sum(n for _, n in codes)
        if codes == [(".", total)] and tp.kind in ("map", "table", "range"):
            out.append(Issue(f"source variable {srcvars} is empty (system-missing) in {total:,} row(s), but target "
                             f"{target} is required and has no missing reason", code="unmapped-code",
                             survey=plan.survey, wave=plan.wave.wave, variable=srcvars,
                             path=".".join(map(str, tp.path)), hint=f"give those rows their {srcvars} in the file",
                             extra={"yaml_path": tp.path, "source_codes": ["."], "count": total, "target": target}))
            continue
        if len(codes) == 1:
            text = f"source variable {srcvars} code {_shown(codes[0][0], labs)} has no mapping for target {target}: {total:,} row(s)"
        else:
            listed = ", ".join(f"{_shown(c, labs)} {n:,}" for c, n in codes[:5])
            text = (f"source variable {srcvars}: {len(codes)} codes have no mapping for target {target}: {listed}"
                    f"{more(len(codes) - 5)} "
                    f"({total:,} row(s) in all)")
        cause = _cause(tp, codes, meta, labs)
        out.append(Issue(text + (cause[0] if cause else ""), code="unmapped-code", survey=plan.survey,
                         wave=plan.wave.wave, variable=srcvars, path=".".join(map(str, tp.path)),
                         hint=cause[1] if cause else "add the codes to the rule's map or missing",
                         extra={"yaml_path": tp.path, "source_codes": [c for c, _ in codes], "count": total,
                                "target": target}))
    return out


def _shown(code: str | None, labels: dict[str, str]) -> str:
    label = labels.get(code or "")
    # a code with spaces at an end is quoted, so they show (' PL' is not 'PL')
    text = f"'{clip(code)}'" if code and code != code.strip() else clip(code)
    return f"{text} ('{label}')" if label else f"{text} (no value label)"


Unaccounted = dict[str, tuple[VarMeta, list[tuple[Code, str]], list[Code], list[tuple[str, str]]]]


def unaccounted_codes(plan: WavePlan, meta: SourceMeta) -> Unaccounted:
    """Target → (its source variable, :func:`unaccounted` codes) for the map, table and range targets whose
    source ``meta`` holds: what :func:`unused_unmapped_labels` compares with a file's rows (the same for
    files of equal metadata)."""
    out: Unaccounted = {}
    for target, tp in plan.targets.items():
        if tp.kind in ("map", "table", "range") and tp.source and (vm := meta.get(tp.source)) is not None:
            out[target] = (vm, *unaccounted(tp, vm))
    return out


def unused_unmapped_labels(rep: Sequence[ReportRow], plan: WavePlan, meta: SourceMeta,
                           codes: Unaccounted | None = None) -> list[Issue]:
    """A warning per source variable whose labelled or declared-missing codes no rule maps, where no row
    holds them (rows that do are errors, :func:`unmapped_codes`): a later file may. ``codes``:
    :func:`unaccounted_codes` of ``plan`` and ``meta``, when known."""
    seen: dict[str, set[str]] = {}
    for target, code, _, _, _ in rep:
        seen.setdefault(target, set()).add(code or "")
    out = []
    for target, (vm, labelled, declared, letters) in (codes if codes is not None else
                                                       unaccounted_codes(plan, meta)).items():
        tp = plan.targets[target]
        used = seen.get(target, set())
        items = [(c, lab) for c, lab in labelled if _text(c) not in used]
        items += [(c, "declared missing") for c in declared if _text(c) not in used and c not in dict(labelled)]
        items += [(f".{k}", lab) for k, lab in letters if f".{k}" not in used]
        if items:
            out.append(Issue(f"{codes_text(items, 'labelled code')} of {vm.name} {'has' if len(items) == 1 else 'have'}"
                             f" no mapping for {target}; no row holds {'it' if len(items) == 1 else 'them'}",
                             code="unused-unmapped-code", severity="warning", survey=plan.survey, wave=plan.wave.wave,
                             variable=vm.name, path=".".join(map(str, tp.path)), extra={"yaml_path": tp.path},
                             hint="map them (or give a missing reason) before a file whose rows hold them"))
    return out


def _text(code: object) -> str:
    """A source code as the harmonisation report writes it (integral numbers without decimals)."""
    if isinstance(code, float) and code.is_integer():
        return str(int(code))
    return str(code)


def not_available(plan: WavePlan, path: str) -> list[Issue]:
    """One warning per file listing the targets it cannot serve (it lacks their variables), and one
    for respondent ids made from file name and row number."""
    absent = [(t, tp) for t, tp in plan.targets.items() if tp.kind == "absent"]
    out = []
    city = plan.targets.get("city")
    # a city survey's file of one city, released without the city variable: --city gives it (and what is read
    # from it: region, ids)
    one_city = "if the file is one city's, give its city with --city NAME (its region and ids follow); otherwise " \
        if city is not None and city.kind == "absent" and city.source and city.expr is None else ""
    if absent:
        # what it lacks for the rule, and for each alternative the rule has (`anweight`, or `pweight` for the
        # pspwght × pweight of older editions)
        # each way of serving the target is what it lacks joined by "and"; ways apart by ", or"
        listed = ", ".join(f"{t} ({', or '.join(' and '.join(lacks) for lacks in tp.lacking) or ' and '.join(tp.absent)})"
                           for t, tp in absent[:12])
        out.append(Issue(f"{path}: {len(absent)} target(s) not available in this file, which lacks their variables: "
                         f"{listed}{more(len(absent) - 12)}; they are stored as missing (not_available)",
                         code="not-available", severity="warning", survey=plan.survey, wave=plan.wave.wave,
                         extra={"targets": {t: list(tp.absent) for t, tp in absent}},
                         hint=f"{one_city}expected for extracts and subsets; for a complete release, the variable "
                              "may be named differently in this edition: add it as an alternative of the rule"))
    rid = plan.targets.get("respondent_id")
    if rid is not None and rid.kind == "row_id":
        out.append(Issue(f"{path}: the file lacks {', '.join(rid.absent)}: respondent ids are made from the file name "
                         "and the row number", code="row-id", severity="warning", survey=plan.survey,
                         wave=plan.wave.wave,
                         hint=(one_city if city is not None and city.source in rid.absent else "")
                         + "ids then do not match those of other editions of the same data"))
    return out


def approximate_alternatives(plan: WavePlan, path: str) -> list[Issue]:
    """One warning per file naming the targets harmonised by an approximate alternative of their rule
    (the file lacks what the rule itself reads: an edition without post-stratification weights, a city survey's
    file without its weight, harmonised unweighted). Proxy alternatives are the rule's own second path (ESS's city
    from its region where the file has no city-level region) and are not warned."""
    used = [(t, tp) for t, tp in plan.targets.items() if tp.alternative and tp.quality == "approximate"]
    if not used:
        return []
    listed = "; ".join(f"{t} by alternative {tp.alternative} ({tp.rule_text.split(' (alternative')[0]})"
                       for t, tp in used[:8]) + more(len(used) - 8, "; and")
    return [Issue(f"{path}: {len(used)} target(s) harmonised by an approximate alternative of their rule, the file "
                  f"lacking what the rule reads: {listed}", code="approximate-alternative", severity="warning",
                  survey=plan.survey, wave=plan.wave.wave, extra={"targets": [t for t, _ in used]},
                  hint="expected for early editions and subsets; use the complete edition for final figures "
                       "(lineage says which rule each file used)")]


def empty_sources(rep: Sequence[ReportRow], plan: WavePlan, rows: int) -> list[Issue]:
    """A warning when a mapped source variable is system-missing in every row (an empty column, not an answer)."""
    # a target with a value and a code other than "." can be neither: its rows are passed over (most targets)
    answered = {t for t, c, v, _, _ in rep if v is not None} & {t for t, c, _, _, _ in rep if c != "."}
    codes: dict[str, set[str | None]] = {}
    reasons: dict[str, dict[str | None, int]] = {}
    for target, code, value, reason, n in rep:
        if target in answered:
            continue
        codes.setdefault(target, set()).add(code)
        counted = reasons.setdefault(target, {})
        counted[reason if value is None else None] = counted.get(reason if value is None else None, 0) + n
    out = []
    for target, seen in codes.items():
        tp = plan.targets.get(target)
        if not rows or tp is None or tp.kind not in ("map", "range", "table") or not tp.source:
            continue
        if seen == {"."}:
            out.append(Issue(
                f"source variable {tp.source} is empty (system-missing) in all {rows:,} rows: every {target} is "
                f"{tp.missing.system}", code="empty-source", severity="warning", survey=plan.survey,
                wave=plan.wave.wave, variable=tp.source, path=".".join(map(str, tp.path)),
                hint="check that the file is the complete release", extra={"yaml_path": tp.path}))
        elif reasons[target] and set(reasons[target]) <= NONRESPONSE:
            shown = ", ".join(f"{r} {n:,}" for r, n in sorted(reasons[target].items(), key=lambda x: str(x[0])))
            out.append(Issue(
                f"source variable {tp.source} holds no answer in any of its {rows:,} rows ({shown}): every {target} "
                "is missing", code="empty-source", severity="warning", survey=plan.survey, wave=plan.wave.wave,
                variable=tp.source, path=".".join(map(str, tp.path)),
                hint="check that the file is the complete release, and that its missing codes are the survey's",
                extra={"yaml_path": tp.path}))
    return out


def empty_inputs(rep: Sequence[ReportRow], plan: WavePlan, rows: int) -> list[Issue]:
    """A warning per variable an expression reads that is system-missing in every row (an empty column): the
    expression's results in those rows follow from its other inputs or are missing, which no rule says."""
    seen: dict[str, dict[str, set[str]]] = {}  # input → target → the codes the input's rows hold
    for target, code, _, _, _ in rep:
        tp = plan.targets.get(target)
        if tp is None or tp.kind != "expr" or not code:
            continue
        for part in code.split(";"):
            name, _, text = part.partition("=")
            seen.setdefault(name, {}).setdefault(target, set()).add(text)
    out = []
    for name, targets in seen.items():
        if not rows or any(texts != {"."} for texts in targets.values()):
            continue
        tp = plan.targets[next(iter(targets))]
        out.append(Issue(
            f"source variable {name} is empty (system-missing) in all {rows:,} rows; the expression(s) for "
            f"{', '.join(targets)} read it as missing there", code="empty-source", severity="warning",
            survey=plan.survey, wave=plan.wave.wave, variable=name, path=".".join(map(str, tp.path)),
            hint="check that the file is the complete release", extra={"yaml_path": tp.path}))
    return out


NONRESPONSE = {"refused", "dont_know", "no_answer", "not_available", "invalid", "other_missing"}  # not routing


def conservation(totals: Sequence[tuple[str, int]], plan: WavePlan, rows: int) -> list[Issue]:
    """An error for each target whose report does not account for every row read."""
    return [Issue(f"conservation failed for {t}: {rows} rows in, {n} accounted for", code="conservation",
                  survey=plan.survey, wave=plan.wave.wave) for t, n in totals if n != rows]


def row_count(declared: int | None, read: int, path: str, plan: WavePlan) -> list[Issue]:
    """An error when the file's header declares another number of rows than were read."""
    if declared is None or declared == read:
        return []
    return [Issue(f"{path}: header declares {declared:,} rows but {read:,} were read; the file may be truncated",
                  code="row-count", survey=plan.survey, wave=plan.wave.wave)]


def duplicate_ids(survey: str, wave: str, n: int, examples: Sequence[tuple[str, int, list[str]]],
                  path: tuple[str | int, ...], written: bool = False) -> list[Issue]:
    """An error when respondent ids repeat within a wave (``n`` ids; ``examples`` as (id, count, files)),
    naming the files: the same respondents in two files is a file given twice. ``written``: the ids are the same
    number written differently in two files (``examples``' ids read ``id = other id``)."""
    if not n:
        return []
    files = sorted({f for _, _, fs in examples for f in fs})
    same = all(fs == files for _, _, fs in examples)  # every example in the same files: name them once
    if written:
        shown = ", ".join(f"{clip(rid)}{' (' + ' and '.join(fs) + ')' if not same else ''}" for rid, _, fs in examples[:3])
        return [Issue(f"the same respondents in several files of {survey} wave {wave}, their ids written differently: "
                      f"{' and '.join(files)} — {n:,} respondent id(s) of one file are another's with leading zeros or "
                      f"a trailing '.0', e.g. {shown}", code="duplicate-id", survey=survey, wave=wave,
                      path="targets.respondent_id", extra={"yaml_path": path},
                      hint="give each file once (an edition with its id stored as text beside one with it as a number "
                           "holds the same respondents)")]
    shown = ", ".join(f"{clip(rid)} ({k}×{' in ' + ' and '.join(fs) if len(fs) > 1 and not same else ''})"
                      for rid, k, fs in examples[:3])
    twice = len(files) > 1
    msg = (f"the same respondents in several files of {survey} wave {wave}: {' and '.join(files)} — {n:,} "
           f"respondent id(s) occur more than once, e.g. {shown}" if twice else
           f"respondent_id is not unique in {files[0] if files else 'the file'}: {n:,} duplicated id(s), e.g. {shown}")
    return [Issue(msg, code="duplicate-id", survey=survey, wave=wave, path="targets.respondent_id",
                  extra={"yaml_path": path},
                  hint="give each file once (one subset as .sav and as .dta holds the same respondents)" if twice
                  else "the respondent key does not identify respondents: check `respondent_id`'s rule")]


def identical_files(files: Sequence[tuple[str, str, str, str, int]]) -> list[Issue]:
    """An error per survey wave given one file's bytes under several names (``files``: survey, wave, file name,
    sha256, rows of the files whose respondent ids are made from file name and row): their respondents would be
    stored twice, with ids that differ by the file name, which the duplicate-id check cannot see."""
    same: dict[tuple[str, str, str], list[tuple[str, int]]] = {}
    for survey, wave, name, sha256, rows in files:
        if sha256:
            same.setdefault((survey, wave, sha256), []).append((name, rows))
    return [Issue(f"the same respondents in several files of {survey} wave {wave}: {' and '.join(n for n, _ in named)} "
                  f"hold the same bytes — {named[0][1]:,} respondents each, whose ids are made from the file name and "
                  "row (the files have no id variable), so they would be stored as different respondents",
                  code="duplicate-id", survey=survey, wave=wave, extra={"data_files": [n for n, _ in named]},
                  hint="give each file once")
            for (survey, wave, _), named in same.items() if len({n for n, _ in named}) > 1]


# SPSS and Stata display formats of dates and times: the values are seconds (SPSS) or days (Stata) since an origin
DATE_FORMAT = re.compile(r"^(?:A|E|J|S|Q|MO|WK)?(?:DATE|DATETIME|TIME|DTIME|YMDHMS|MTIME)\d|^%-?t[cCdwmqhy]|^%d",
                         re.IGNORECASE)


def validation_failures(groups: Sequence[tuple[str, str, list[str], list[int], int]], plan: WavePlan,
                        unmapped: Sequence[Issue] = (), file: str | None = None,
                        meta: SourceMeta | None = None) -> list[Issue]:
    """One error per (column, pandera check) with failures: ``groups`` holds column, check, failing
    values, example source rows and the number of cases. A null in a column whose codes ``unmapped``
    (:func:`unmapped_codes`) names is said there, with its codes; a rule reading a variable the file (``meta``)
    stores as a date is said to (its numbers are seconds or days, not the years a rule reads)."""
    said = {str(i.extra["target"]) for i in unmapped if "target" in i.extra}
    out = []
    for col, check, values, rows, cases in groups:
        if check == "not_nullable" and col in said:
            continue
        examples = ", ".join(sorted({f"'{clip(v)}'" if v != v.strip() else clip(v) for v in values})[:5])
        shown = ", ".join(str(r) for r in sorted(rows)[:3])
        tp = plan.targets.get(col)
        why = "" if tp is None else f": {col} is required, but its rule ({tp.rule_text}) gave no value in those rows" \
            if check == "not_nullable" else f" (from its rule: {tp.rule_text})"
        dates = [f"{vm.name} ({vm.format})" for n in (tp.variables() if tp is not None else [])
                 if meta is not None and (vm := meta.get(n)) is not None and DATE_FORMAT.match(vm.format or "")]
        if dates:
            why += (f"; the file stores {' and '.join(dates)} as a date: its numbers are seconds (SPSS) or days "
                    "(Stata) since the format's origin, not what the rule reads")
        out.append(Issue(f"pandera check '{check}' failed on column {col}: {cases:,} case(s), e.g. {examples}"
                         + (f" ({'source rows' if len(rows) >= cases else 'first at source row(s)'} {shown}"
                            f"{' of ' + file if file else ''})" if shown else
                            f" (in {file})" if file else "") + why,
                         code="validation", survey=plan.survey, wave=plan.wave.wave, variable=col,
                         hint="read the variable's year (or number) in the file, or a variable that holds it, in a "
                              "wave override of the rule" if dates else None))
    return out
