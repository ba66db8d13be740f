"""Labels check codes: a file's value label of a country or language code must not name another one.

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
from functools import lru_cache

from harmonise.errors import Issue
from harmonise.spec.codetables import TableSet
from harmonise.spec.resolve import TargetPlan
from harmonise.spec.schema import Variable
from harmonise.spec.source import VarMeta

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
        named = sorted(by_name.get(plain(label), ()))
        if named:
            found.append(f"{code!r} is labelled '{label}' ({', '.join(named)}) but maps to {target} "
                         f"({tables.names(reference)[target][0]})")
    if not found:
        return []
    shown = "; ".join(found[:10]) + (f"; and {len(found) - 10} more" if len(found) > 10 else "")
    path = (*tp.path, "table" if tp.kind == "table" else "map")
    return [Issue(f"the labels of {vm.name} contradict the codes the rule maps: {shown}", code="label-contradiction",
                  variable=vm.name, path=".".join(map(str, path)), extra={"yaml_path": path},
                  hint="the file's codes follow another scheme than the code table: map them by code in the rule's "
                       "map (a wave override), or check that the file is the survey and wave it seems")]
