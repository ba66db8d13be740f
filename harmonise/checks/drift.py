"""Drift between a declared source codebook and the actual file's metadata.

New editions rename variables, add codes, relabel them or change missing
declarations. Each difference is reported by variable; it is an error where the
crosswalk reads the variable, a warning otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence

from harmonise.errors import Issue
from harmonise.spec.source import SourceMeta, VarMeta


def _fmt(code: object) -> str:
    return repr(code)


def compare(declared: SourceMeta, actual: SourceMeta, used: set[str], survey: str, wave: str) -> list[Issue]:
    """Differences between ``declared`` (codebook) and ``actual`` (file), located by variable and code."""
    out: list[Issue] = []

    def add(var: str, msg: str, hint: str | None = None) -> None:
        affected = var in used
        out.append(Issue(f"drift in {var}: {msg}", code="drift", severity="error" if affected else "warning",
                         survey=survey, wave=wave, variable=var, path=declared.origin,
                         hint=hint or ("the crosswalk reads this variable: check its rule, then update the declared "
                                       "codebook" if affected else "update the declared codebook")))

    same_family = _family(declared.format) == _family(actual.format)
    for name, dv in declared.variables.items():
        av = actual.get(name)
        if av is None:
            add(name, f"declared in {declared.origin} but absent from the file")
            continue
        if same_family:
            _compare_var(dv, av, add)
        elif dv.type != av.type:
            add(name, f"storage type changed from {dv.type} to {av.type}")
    for name in actual.variables:
        if declared.get(name) is None and name in used:
            add(name, "in the file but not declared in the codebook")
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
    return shown + (f" and {len(items) - 5} more" if len(items) > 5 else "")


def _compare_var(dv: VarMeta, av: VarMeta, add) -> None:  # type: ignore[no-untyped-def]
    name = dv.name
    if dv.type != av.type:
        add(name, f"storage type changed from {dv.type} to {av.type}")
        return
    gone = [(c, lab) for c, lab in dv.labels.items() if c not in av.labels]
    if gone:
        add(name, f"code{'s' if len(gone) > 1 else ''} {_codes(gone)} no longer labelled")
    for code, label in dv.labels.items():
        if code in av.labels and av.labels[code] != label:
            add(name, f"label of code {_fmt(code)} changed from '{_shown(label)}' to '{_shown(av.labels[code])}'",
                ENCODING_HINT if _ascii(label) == _ascii(av.labels[code]) else None)
    new = [(c, lab) for c, lab in av.labels.items() if c not in dv.labels]
    if len(new) == 1:
        add(name, f"new code {_codes(new)}")
    elif new:
        add(name, f"new codes {_codes(new)}")
    if sorted(map(str, dv.missing_values)) != sorted(map(str, av.missing_values)) or \
            sorted(dv.missing_ranges) != sorted(av.missing_ranges):
        add(name, f"missing declaration changed from {dv.missing_declaration() or 'none'} "
                  f"to {av.missing_declaration() or 'none'}")
    if set(dv.extended) != set(av.extended):
        add(name, f"extended missing values changed from {sorted(dv.extended)} to {sorted(av.extended)}")
