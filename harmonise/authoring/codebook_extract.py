"""Declared source codebooks from real files: the files of one wave merged into one declaration.

A survey wave ships as several files (one per country, several editions, SPSS and Stata) whose
metadata differ in small ways: a code labelled in one country's file only, a label cut at 60
characters in one file, user-missing codes declared as discrete values in one file and as a range
in another. :func:`merge` joins them variable by variable (every labelled code, the fullest label,
the commonest missing declaration) and notes each difference; :func:`refresh` turns the result into
a declared codebook (``surveys/<survey>/codebook_<wave>.yaml``), keeping from an existing codebook
what no file shows. The metadata must be decoded correctly: a label read with the wrong encoding is
longer and would pass for the fuller one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from harmonise.spec.codebook import CodebookVariable, SourceCodebook, codebook_dict
from harmonise.spec.source import Code, SourceMeta, VarMeta, norm_code

SHOWN = 5  # differences spelt out per note; the rest are counted


@dataclass
class MergedVariable:
    """One variable across the files that hold it: the merged metadata and how the files differ."""

    meta: VarMeta
    files: list[str]
    notes: list[str] = field(default_factory=list)


def fullest(texts: Sequence[str]) -> str:
    """The fullest of several versions of one text: the longest (a cut-off version is shorter), then
    the one with more non-ASCII letters (accents kept), then the commonest, then the first."""
    counts = Counter(texts)
    return max(enumerate(texts), key=lambda it: (len(it[1]), sum(ord(c) > 127 for c in it[1]),
                                                  counts[it[1]], -it[0]))[1]


def family(fmt: str | None) -> str:
    """SPSS (sav, zsav, por) or Stata (dta): the two declare labels and missing values differently."""
    return "stata" if fmt == "dta" else "spss"


def merge(metas: Sequence[SourceMeta]) -> dict[str, MergedVariable]:
    """Every variable of ``metas`` (in first-seen order), merged across the files that hold it."""
    held: dict[str, list[tuple[str, VarMeta]]] = {}
    for meta in metas:
        for name, vm in meta.variables.items():
            held.setdefault(name, []).append((Path(meta.origin).name, vm))
    return {name: _merge(items) for name, items in held.items()}


def _by_file(items: Sequence[tuple[str, Any]], quoted: bool = True) -> str:
    """``'a' (F1, F2); 'b' (F3)``: each distinct value with the files that have it."""
    groups: dict[Any, list[str]] = {}
    for f, value in items:
        groups.setdefault(value, []).append(f)
    return "; ".join(f"{_shown(v) if quoted else v} ({', '.join(fs)})" for v, fs in groups.items())


def _shown(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _declaration(vm: VarMeta) -> str:
    parts = [f"range {norm_code(lo)}-{norm_code(hi)}" for lo, hi in vm.missing_ranges]
    if vm.missing_values:
        parts.append("values " + ", ".join(str(v) for v in vm.missing_values))
    return " + ".join(parts) or "none"


def _counted(items: list[str], what: str) -> str:
    """``3 codes ...: a; b; c``, the first :data:`SHOWN` spelt out."""
    more = f" and {len(items) - SHOWN} more" if len(items) > SHOWN else ""
    sep = "; " if any(" " in i for i in items) else ", "
    return f"{len(items)} {what}: " + sep.join(items[:SHOWN]) + more


def _merge(items: list[tuple[str, VarMeta]]) -> MergedVariable:
    files = [f for f, _ in items]
    first = items[0][1]
    notes: list[str] = []
    if len({vm.type for _, vm in items}) > 1:
        notes.append(f"storage type differs: {_by_file([(f, vm.type) for f, vm in items], False)}; "
                     f"declared {first.type}")
    same = [(f, vm) for f, vm in items if vm.type == first.type]
    if len({vm.label for _, vm in same}) > 1:
        notes.append(f"variable label differs: {_by_file([(f, vm.label) for f, vm in same])}")
    codes: list[Code] = []
    for _, vm in same:
        codes.extend(c for c in vm.labels if c not in codes)
    labels: dict[Code, str] = {}
    differ: list[str] = []
    cut: dict[tuple[str, ...], int] = {}  # files whose labels are the declared ones cut short -> how many
    unlabelled: dict[tuple[str, ...], list[str]] = {}  # files that leave codes unlabelled -> the codes
    for code in codes:
        texts = [(f, vm.labels[code]) for f, vm in same if code in vm.labels]
        full = labels[code] = fullest([t for _, t in texts])
        others = [(f, t) for f, t in texts if t != full]
        if others and all(full.startswith(t) for _, t in others):
            key = tuple(f for f, _ in others)
            cut[key] = cut.get(key, 0) + 1
        elif others:
            differ.append(f"{_shown(code)} {_by_file(texts)}")
        if len(texts) < len(same):
            unlabelled.setdefault(tuple(f for f, vm in same if code not in vm.labels), []).append(_shown(code))
    for short, n in cut.items():
        notes.append(f"{n} label{'s are' if n > 1 else ' is'} cut short in {', '.join(short)} (the full text declared)")
    if differ:
        notes.append(_counted(differ, f"code{'s' if len(differ) > 1 else ''} labelled differently, "
                                      "the fullest label declared"))
    for lacking, shown in unlabelled.items():
        notes.append(_counted(shown, f"code{'s' if len(shown) > 1 else ''} not labelled in {', '.join(lacking)}"))
    declared = Counter((tuple(vm.missing_values), tuple(vm.missing_ranges)) for _, vm in same)
    (values, ranges), _ = declared.most_common(1)[0]
    if len(declared) > 1:
        notes.append("missing values declared differently: "
                     f"{_by_file([(f, _declaration(vm)) for f, vm in same], False)}; the commonest declared")
    extended: dict[str, str] = {}
    for _, vm in same:
        for letter, text in vm.extended.items():
            extended[letter] = fullest([extended[letter], text]) if extended.get(letter) else text
    widths = [vm.width for _, vm in same if vm.width is not None]
    widest = max(same, key=lambda fv: fv[1].width or 0)[1]
    meta = replace(first, label=fullest([vm.label for _, vm in same]), labels=labels,
                   missing_values=list(values), missing_ranges=list(ranges), extended=extended,
                   width=max(widths) if widths else None, format=widest.format if widths else first.format,
                   measure=next((vm.measure for _, vm in same if vm.measure in ("nominal", "ordinal", "scale")),
                                first.measure))
    return MergedVariable(meta, files, notes)


def _entry(merged: MergedVariable, remark: str | None) -> dict[str, Any]:
    doc = codebook_dict(SourceMeta("merged", {merged.meta.name: merged.meta}), survey="", wave="", file="")
    entry = dict(doc["variables"][0])  # type: ignore[index]
    entry.pop("evidence")
    text = f"Seen in {', '.join(merged.files)}." + "".join(f" {n[0].upper()}{n[1:]}." for n in merged.notes)
    entry["notes"] = text + (f" {remark}" if remark else "")
    entry["evidence"] = "seen"
    return entry


def _declared(var: CodebookVariable) -> dict[str, Any]:
    """A base codebook's variable as YAML-ready data, in its own key order."""
    entry = var.model_dump(exclude_none=True, exclude_defaults=True)
    entry = {"name": var.name, "label": var.label, "type": var.type, **entry}
    if "missing" in entry and "range" in entry["missing"]:
        entry["missing"]["range"] = [norm_code(x) for x in entry["missing"]["range"]]
    if var.evidence is not None:  # keep evidence last, as in the files
        entry["evidence"] = entry.pop("evidence")
    return entry


def _relabelled(var: CodebookVariable, merged: MergedVariable, fmt: str, remark: str | None) -> dict[str, Any]:
    """A base variable whose label texts a file of the other format family shows: storage, format and
    missing declaration stay as declared (that family stores them differently). ``fmt``: the codebook's."""
    entry = _declared(var)
    entry["label"] = fullest([var.label, merged.meta.label])
    labels = dict(var.labels)
    for code, text in merged.meta.labels.items():
        if isinstance(code, str) != (var.type == "string"):
            continue
        labels[code] = fullest([labels[code], text]) if code in labels else text
    if labels:
        entry["labels"] = labels
    kind = "Stata" if family(fmt) == "spss" else "SPSS"
    seen = (f"Seen in {', '.join(merged.files)} ({kind}): its name, label and value labels; storage and missing "
            "declaration as declared before.")
    entry["notes"] = " ".join(t for t in (seen, *(f"{n[0].upper()}{n[1:]}." for n in merged.notes), remark) if t)
    entry.pop("evidence", None)
    entry["evidence"] = "seen"
    return entry


def refresh(metas: Sequence[SourceMeta], *, survey: str, wave: str, file: str, fmt: str,
            base: SourceCodebook | None = None, variables: Sequence[str] | None = None,
            notes: str | None = None, remarks: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A declared codebook for ``file`` (format ``fmt``) from the files' metadata ``metas``.

    ``variables`` (default: the base codebook's, else every variable of the files) are declared, in
    order: as merged from the files of ``fmt``'s format family that hold them (evidence ``seen``,
    notes naming the files and how they differ); else, for a base variable that only files of the
    other family hold (a Stata extract for an SPSS codebook), with the base's declaration and the
    files' label texts; else as the base declares them. ``remarks`` adds a note per variable.
    """
    own = [m for m in metas if family(m.format) == family(fmt)]
    other = [m for m in metas if family(m.format) != family(fmt)]
    merged, merged_other = merge(own), merge(other)
    declared = {v.name: v for v in base.variables} if base else {}
    names = list(variables) if variables is not None else (list(declared) if base else list(merged))
    entries = []
    for name in names:
        remark = (remarks or {}).get(name)
        if name in merged:
            entries.append(_entry(merged[name], remark))
        elif name in declared and name in merged_other:
            entries.append(_relabelled(declared[name], merged_other[name], fmt, remark))
        elif name in declared:
            entry = _declared(declared[name])
            if remark:
                entry["notes"] = f"{entry['notes']} {remark}" if entry.get("notes") else remark
                if "evidence" in entry:
                    entry["evidence"] = entry.pop("evidence")
            entries.append(entry)
        else:
            raise ValueError(f"variable {name!r} is in none of the files and not in the base codebook")
    encodings = Counter(m.encoding for m in own if m.encoding)
    doc: dict[str, Any] = {"survey": survey, "wave": wave, "file": file, "format": fmt}
    encoding = encodings.most_common(1)[0][0] if encodings else (base.encoding if base else None)
    if encoding:
        doc["encoding"] = encoding
    doc["names"] = base.names if base else "seen"
    if len(own) == 1 and own[0].rows is not None and Path(own[0].origin).name == file:
        doc["rows"] = own[0].rows  # only when the codebook describes that very file
    if notes:
        doc["notes"] = notes
    doc["variables"] = entries
    SourceCodebook.model_validate(doc)  # what is written loads back
    return doc


def dump(doc: Mapping[str, Any], comment: str) -> str:
    """The codebook as YAML in the layout of the files under ``surveys/``, after a ``#`` comment line."""
    body = yaml.safe_dump(dict(doc), sort_keys=False, allow_unicode=True, width=120)
    return f"# {comment}\n{body}"
