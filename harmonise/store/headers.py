"""A data file's header as the build cache keeps it: JSON with an exact round trip (codes keep int, float or
str; NaN allowed), the variables apart from the rest (a wave's country files share their variables: kept once)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harmonise.readers.files import SourceFile
from harmonise.readers.textcodec import TextCodec
from harmonise.spec.source import SourceMeta, VarMeta


def _var_json(vm: VarMeta) -> list[Any]:
    return [vm.name, vm.label, vm.type, vm.width, vm.format, vm.measure, [[k, v] for k, v in vm.labels.items()],
            list(vm.missing_values), [list(r) for r in vm.missing_ranges], vm.extended]


def _var_from(row: list[Any]) -> VarMeta:
    name, label, typ, width, fmt, measure, labels, values, ranges, extended = row
    return VarMeta(name, label, typ, width, fmt, measure, {k: v for k, v in labels}, list(values),
                   [(float(lo), float(hi)) for lo, hi in ranges], dict(extended))


def variables_json(meta: SourceMeta) -> str:
    """The variables of ``meta`` as JSON (in file order)."""
    return json.dumps([_var_json(vm) for vm in meta.variables.values()], ensure_ascii=False)


def variables_from(text: str) -> dict[str, VarMeta]:
    """The variables :func:`variables_json` wrote."""
    return {vm.name: vm for vm in map(_var_from, json.loads(text))}


def source_json(src: SourceFile) -> str:
    """Everything of an opened file but its variables (see :func:`variables_json`) and the user's columns."""
    m = src.meta
    return json.dumps({"format": src.format, "encoding": src.encoding,
                       "codec": [src.codec.fallback, src.codec.utf8, src.codec.guessed] if src.codec else None,
                       "meta": {"format": m.format, "encoding": m.encoding, "rows": m.rows, "file_label": m.file_label,
                                "header": m.header}}, ensure_ascii=False)


def source_from(path: Path, text: str, variables: dict[str, VarMeta]) -> SourceFile:
    """The opened file :func:`source_json` and :func:`variables_json` describe, at ``path``."""
    d = json.loads(text)
    m = d["meta"]
    meta = SourceMeta(origin=str(path), variables=dict(variables), format=m["format"], encoding=m["encoding"],
                      rows=m["rows"], file_label=m["file_label"], header=dict(m["header"]))
    codec = TextCodec(d["codec"][0], bool(d["codec"][1]), bool(d["codec"][2])) if d["codec"] else None
    return SourceFile(path=path, format=d["format"], meta=meta, encoding=d["encoding"], codec=codec)
