"""Drift between a declared source codebook and the actual file's metadata.

New editions rename variables, add codes, relabel them or change missing
declarations. None of that changes the harmonised data by itself (codes the data
holds are judged on the data), so drift is a note: one per variable the crosswalk
reads, one for the others, one for declared variables the file lacks. Labels that
differ only in their non-ASCII characters (a wrong encoding) are one warning.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from harmonise.errors import Issue, more
from harmonise.spec.source import SourceMeta, VarMeta


def _fmt(code: object) -> str:
    return repr(code)


def compare(declared: SourceMeta, actual: SourceMeta, used: set[str], survey: str, wave: str) -> list[Issue]:
    """Differences between ``declared`` (codebook) and ``actual`` (file): one note per variable the crosswalk
    reads, at most, and one note for all others. A declared codebook is a reference, not a gate: what
    changes the harmonised data is judged on the data (unmapped codes are errors there), so drift is a
    note — but a label that differs only in its non-ASCII characters (a wrong ``--encoding``) is a
    warning."""
    out: list[Issue] = []
    others: list[str] = []
    encoded: list[str] = []
    recoded: dict[str, list[object]] = {}  # the labels of each variable ``encoded`` names
    absent = [n for n in declared.variables if actual.get(n) is None]
    same_family = _family(declared.format) == _family(actual.format)
    for name, dv in declared.variables.items():
        av = actual.get(name)
        if av is None:
            continue
        found: list[str] = []
        codes: dict[str, list[object]] = {}
        encoding = False
        if same_family:
            encoding = _compare_var(dv, av, found.append, codes)
        elif dv.type != av.type:
            found.append(f"storage type changed from {dv.type} to {av.type}")
        if not found:
            continue
        if encoding:
            encoded.append(f"{name} ({found[0]})" if not encoded else name)
            recoded[name] = codes.get("labels_changed", [])
            continue
        if name not in used:
            others.append(name)
            continue
        out.append(Issue(f"drift in {name}: {'; '.join(found)}", code="drift", severity="note",
                         survey=survey, wave=wave, variable=name, path=declared.origin,
                         hint="update the declared codebook if this edition is the reference",
                         extra={**({STORED_AS: av.type} if av.type != dv.type else {}), **codes}))
    if encoded:
        out.append(Issue(f"the labels of {len(encoded)} variable(s) differ from {declared.origin}: "
                         f"{', '.join(encoded[:8])}{more(len(encoded) - 8)}", code="drift",
                         severity="warning", survey=survey, wave=wave, path=declared.origin, hint=ENCODING_HINT,
                         extra={"variables": list(recoded), "labels_changed": recoded}))
    used_absent = [n for n in absent if n in used]
    if absent:
        listed = used_absent + [n for n in absent if n not in used]
        out.append(Issue(f"{len(absent)} variable(s) declared in {declared.origin} are not in the file"
                         f"{f' ({len(used_absent)} read by the crosswalk)' if used_absent else ''}: "
                         f"{', '.join(listed[:8])}{more(len(listed) - 8)}", code="drift", severity="note", survey=survey,
                         wave=wave, path=declared.origin, hint="an extract, a subset or another edition",
                         extra={"variables": listed}))
    if others:
        out.append(Issue(f"{len(others)} other variable(s) differ from {declared.origin} (labels, codes or missing "
                         f"declarations): {', '.join(others[:8])}{more(len(others) - 8)}", code="drift",
                         severity="note", survey=survey, wave=wave, path=declared.origin,
                         hint="the crosswalk does not read them", extra={"variables": others}))
    return out


STORED_AS = "stored_as"  # a drift note's extra: the type the file stores a variable with, where not the declared


def retyped_static(static: Sequence[Issue], found: Sequence[Issue]) -> list[Issue]:
    """``static`` (the crosswalks checked against the declared codebooks) with a hint on the errors about a
    variable's codes (``code-type``, ``unmapped-code``) where the data files' checks (``found``) say the files store
    the variable with another type: the rule may be right for the files, and the declared codebook, which the
    static check reads, is to be refreshed from them."""
    stored = {(i.survey, i.wave, i.variable): i.extra[STORED_AS] for i in found
              if i.code == "drift" and STORED_AS in i.extra}
    out = []
    for i in static:
        kind = stored.get((i.survey, i.wave, i.variable))
        if kind is not None and i.severity == "error" and i.code in ("code-type", "unmapped-code"):
            i = replace(i, hint=(f"{i.hint}; " if i.hint else "") + (
                f"the data file(s) store {i.variable} as {kind}, unlike the declared codebook this check reads: if "
                "the files are the reference, refresh the declared codebook's variable from them (`harmonise declare "
                f"--survey {i.survey} --wave {i.wave} FILE... --write`)"))
        out.append(i)
    return out


ENCODING_HINT = ("the labels differ only in their non-ASCII characters: the file's text was probably decoded "
                 "with the wrong encoding; drop --encoding to use the one the file declares, or pass the right one")


def _shown(text: str) -> str:
    """``text`` with control characters written as escapes (a terminal would hide them)."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode() for ch in text)


def _ascii(text: str) -> str:
    return "".join(ch for ch in text if ord(ch) < 128)


def _family(fmt: str | None) -> str:
    """SPSS and Stata editions of one wave differ structurally (string labels, missing conventions)."""
    return "stata" if fmt == "dta" else "spss"


def _codes(items: Sequence[tuple[object, str]]) -> str:
    shown = ", ".join(f"{_fmt(c)} ('{lab}')" for c, lab in items[:5])
    return shown + more(len(items) - 5)


def _compare_var(dv: VarMeta, av: VarMeta, add: Callable[[str], None], codes: dict[str, list[object]]) -> bool:
    """Say each difference of one variable with ``add``, and put the whole lists of codes it cuts short in
    ``codes`` (the note's ``extra``: ``codes_not_labelled``, ``labels_changed``, ``codes_new``); True when labels
    differ only in non-ASCII characters."""
    if dv.type != av.type:
        add(f"storage type changed from {dv.type} to {av.type}")
        return False
    encoding = False
    gone = [(c, lab) for c, lab in dv.labels.items() if c not in av.labels]
    if gone:
        add(f"code{'s' if len(gone) > 1 else ''} {_codes(gone)} not labelled in the file")
        codes["codes_not_labelled"] = [{"code": c, "label": lab} for c, lab in gone]
    changed = [(c, lab, av.labels[c]) for c, lab in dv.labels.items() if c in av.labels and av.labels[c] != lab]
    if changed:
        c, was, now = changed[0]
        encoding = any(_ascii(o) == _ascii(n) and not _prefix(o, n) for _, o, n in changed)
        add(f"label of code {_fmt(c)} changed from '{_shown(was)}' to '{_shown(now)}'{more(len(changed) - 1)}")
        codes["labels_changed"] = [{"code": c, "declared": o, "file": n} for c, o, n in changed]
    added = [(c, lab) for c, lab in av.labels.items() if c not in dv.labels]
    if added:
        add(f"new code{'s' if len(added) > 1 else ''} {_codes(added)}")
        codes["codes_new"] = [{"code": c, "label": lab} for c, lab in added]
    if sorted(map(str, dv.missing_values)) != sorted(map(str, av.missing_values)) or \
            sorted(dv.missing_ranges) != sorted(av.missing_ranges):
        add(f"missing declaration changed from {dv.missing_declaration() or 'none'} "
            f"to {av.missing_declaration() or 'none'}")
    if set(dv.extended) != set(av.extended):
        add(f"extended missing values changed from {sorted(dv.extended)} to {sorted(av.extended)}")
    return encoding


def _prefix(a: str, b: str) -> bool:
    """One label is the other cut short (SPSS cut value labels at 60 characters)."""
    return a.startswith(b) or b.startswith(a)
