"""Value labels and missing-value declarations a file's numeric variables lack, taken from the wave's declared
codebook (decision 101).

A file saved without its metadata (converted from CSV, written by a script that keeps the numbers only) holds
ESS's 7, 77 and 6666 as bare numbers. By decision 2 an unlabelled, undeclared code is never given a missing
reason by the survey's conventions, so every such file failed with an unmapped-code error per variable, and the
fix the messages asked for was to write into the crosswalk what the declared codebook already says. A numeric
variable with no value label and no missing declaration at all is read with those of the wave's declared codebook
instead, and said (a warning: the file may code the variable otherwise). A variable the file labels at all keeps
its own metadata, however it differs (the real file is right); text variables are never given labels (a Stata
file cannot label them).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from harmonise.errors import Issue
from harmonise.readers.files import SourceFile
from harmonise.spec.source import SourceMeta, VarMeta

SHOWN = 8  # variables named in the warning


def bare(vm: VarMeta) -> bool:
    """A variable the file gives no value label, missing value, missing range or labelled Stata letter."""
    return not (vm.labels or vm.missing_values or vm.missing_ranges or vm.extended)


def borrow_labels(src: SourceFile, declared: SourceMeta | None) -> tuple[SourceFile, list[str]]:
    """``src`` with each bare numeric variable that the declared codebook declares numeric with labels or
    missing values given those (a new ``SourceFile`` and metadata: the opened file may serve other waves), and
    the names of those variables; ``src`` itself, and no names, when there are none."""
    if declared is None:
        return src, []
    taken: dict[str, VarMeta] = {}
    for name, vm in src.meta.variables.items():
        if name in src.virtual or vm.type != "numeric" or not bare(vm):
            continue
        ref = declared.get(name)
        if ref is None or ref.type != "numeric" or bare(ref):
            continue
        taken[name] = replace(vm, labels=dict(ref.labels), missing_values=list(ref.missing_values),
                              missing_ranges=list(ref.missing_ranges))
    if not taken:
        return src, []
    meta = replace(src.meta, variables={k: taken.get(k, v) for k, v in src.meta.variables.items()})
    return replace(src, meta=meta, virtual=dict(src.virtual)), list(taken)


def borrowed_issue(path: str, borrowed: Iterable[str], read: Iterable[str], codebook: str, survey: str,
                   wave: str) -> Issue | None:
    """The warning for a file whose variables ``read`` by the wave's rules were given the declared codebook's
    labels (``borrowed``); None when the rules read none of them."""
    wanted = {n.lower() for n in read}
    names = sorted(n for n in borrowed if n.lower() in wanted)
    if not names:
        return None
    shown = ", ".join(names[:SHOWN]) + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")
    return Issue(
        f"{path}: {len(names)} numeric variable(s) the rules read carry no value labels or missing-value "
        f"declarations ({shown}): read with the codes and missing values {codebook} declares for them, so that "
        "their missing codes (7, 77, 6666, …) have their reasons", code="labels-borrowed", severity="warning",
        survey=survey, wave=wave,
        hint="a file saved without its metadata? Check that it codes these variables as the codebook does, or "
             "use the survey's own SPSS or Stata release")
