"""Line-aware, safe YAML loading.

Crosswalks are written by many hands, so every error must point at a line. We
compose the document with PyYAML's *safe* loader (no Python object tags can be
constructed), then build plain dicts/lists ourselves while recording the line of
every node under its field path. Duplicate keys, anchors/aliases (expansion
bombs) and YAML 1.1 booleans used as keys are rejected with their line.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import yaml

from harmonise.errors import InputError, Issue
from harmonise.spec import parsecache

PathKey = tuple[str | int, ...]

MAX_BYTES = 5_000_000
MAX_NODES = 500_000


@dataclass
class LineIndex:
    """Maps a field path (tuple of keys/indices) to the 1-based line of its node."""

    file: str
    lines: dict[PathKey, int] = field(default_factory=dict)
    # a crosswalk's wave ids by position (None: a wave without a usable id): paths name waves by id (waves[9])
    wave_ids: tuple[str | None, ...] = ()

    def display(self, path: str) -> str:
        """``waves.8.overrides.x`` → ``waves[9].overrides.x`` (the wave's id, not its list position)."""
        m = _WAVE_INDEX.match(path)
        if m is None or int(m[1]) >= len(self.wave_ids) or self.wave_ids[int(m[1])] is None:
            return path
        return f"waves[{self.wave_ids[int(m[1])]}]{path[m.end(1):]}"

    def line_of(self, path: PathKey) -> int | None:
        """Line of ``path`` or of its nearest ancestor that has one."""
        p = tuple(path)
        while p:
            if p in self.lines:
                return self.lines[p]
            p = p[:-1]
        return self.lines.get((), None)

    def issue(self, path: PathKey, message: str, **kw: Any) -> Issue:
        return Issue(message=message, file=self.file, line=self.line_of(path), path=self.display(dotted(path)), **kw)


_WAVE_INDEX = re.compile(r"^waves\.(\d+)(?=\.|$)")


def locate(issue: Issue, index: LineIndex | None, survey: str | None = None, wave: str | None = None) -> Issue:
    """``issue`` located at the line of its ``extra['yaml_path']`` in ``index`` (and given its survey and
    wave); the path leaves ``extra``. An issue without a path keeps no file (it is about data)."""
    path = issue.extra.get("yaml_path") if issue.extra else None
    kw: dict[str, Any] = {}
    if index is not None and issue.file is None and path is not None:
        kw["file"] = index.file
        kw["line"] = index.line_of(tuple(path)) if path else None  # type: ignore[arg-type]
    extra = {k: v for k, v in issue.extra.items() if k != "yaml_path"}
    if index is not None and issue.path:
        kw["path"] = index.display(issue.path)
    return replace(issue, survey=issue.survey or survey, wave=issue.wave or wave, extra=extra, **kw)


def dotted(path: PathKey) -> str:
    """``('targets', 'sex', 'map', 3)`` → ``targets.sex.map.3``."""
    return ".".join(str(p) for p in path)


@dataclass
class Loaded:
    data: Any
    index: LineIndex
    issues: list[Issue]
    text: str


_constructor = yaml.SafeLoader("")


_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
# Plain data only: anything else (python/*, binary, set, omap, local !tags) is refused, not coerced.
ALLOWED_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp")}


_KINDS = {f"tag:yaml.org,2002:{t}": k for t, k in (("int", "an integer"), ("float", "a number"), ("bool", "a boolean"),
                                                   ("timestamp", "a date"), ("null", "null"))}


class _BadScalar(Exception):
    """A scalar YAML resolves to a type (date, number, boolean) whose value it cannot hold."""

    def issue(self, node: yaml.Node, file: str, path: str) -> Issue:
        kind = _KINDS.get(node.tag, _short_tag(node.tag))
        shown = node.value if len(node.value) <= 40 else f"{node.value[:20]}… ({len(node.value)} characters)"
        return Issue(f"{shown!r} is read by YAML as {kind} but is not a valid one ({self})", file=file,
                     line=node.start_mark.line + 1, path=path, code="yaml-value",
                     hint=f"correct it, or quote it to keep it as text: \"{shown}\"")


# The number forms a crosswalk may write unquoted: plain decimal integers and decimal fractions. YAML 1.1 also
# reads octal (040 → 32), hexadecimal (0x2), binary (0b1), underscores (1_0 → 10) and base 60 (1:00 → 60) as
# numbers, and YAML 1.2 reads zero-padded digits that 1.1 keeps as text (008) as numbers: each is refused
# (_NumberForm), so a zero-padded ISO numeric code never becomes another number or type without a word.
_PLAIN_INT = re.compile(r"[-+]?(?:0|[1-9][0-9]*)")
_PLAIN_FLOAT = re.compile(r"[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)")
_ZERO_PADDED = re.compile(r"[-+]?0[0-9_]+")


class _NumberForm(_BadScalar):
    """A scalar YAML reads as a number through a form other than plain decimal digits (or a zero-padded number
    YAML 1.1 and 1.2 read differently): what it is read as (``self.args[0]``) and the number meant (``[1]``)."""

    def issue(self, node: yaml.Node, file: str, path: str) -> Issue:
        read, number = self.args
        return Issue(f"{node.value!r} is {read}", file=file, line=node.start_mark.line + 1, path=path,
                     code="yaml-number-form",
                     hint=f"write {number} for the number, or quote it for text: \"{node.value}\"")


def _number_form(node: yaml.ScalarNode, value: Any) -> _NumberForm | None:
    """Why ``node`` (read as ``value``) may not be written as it is, or None when it may."""
    text = node.value
    if node.tag == _INT and not _PLAIN_INT.fullmatch(text):
        body = text.lstrip("-+")
        if body[:2] in ("0x", "0b"):
            base = "hexadecimal" if body[1] == "x" else "binary"
            return _NumberForm(f"read by YAML as the {base} number {value}", value)
        if ":" in body:
            return _NumberForm(f"read by YAML as the base-60 (sexagesimal) number {value}", value)
        if _ZERO_PADDED.fullmatch(text):
            meant = int(text.replace("_", ""), 10)
            return _NumberForm(f"a zero-padded number, read by YAML as the octal number {value}", meant)
        return _NumberForm(f"read by YAML as the number {value} (the underscores dropped)", value)
    if node.tag == _FLOAT and not _PLAIN_FLOAT.fullmatch(text):
        if ":" in text:
            return _NumberForm(f"read by YAML as the base-60 (sexagesimal) number {value}", value)
        return _NumberForm(f"read by YAML as the number {value} (the underscores dropped)", value)
    return None


def _scalar(node: yaml.ScalarNode, text: str = "") -> Any:
    """The Python value of a scalar; raises _BadScalar when its (implicit or explicit) type cannot hold it
    (``2020-02-30``, ``0x_``, a 5,000-digit number, ``!!int 1.5``), and _NumberForm when it is a number
    written in a form other than decimal digits (``040``, ``0x2``, ``1_0``, ``1:00``) or an unquoted
    zero-padded number YAML 1.1 keeps as text (``008``: YAML 1.2 reads 8). ``text`` is the document, to
    tell ``!!str 008`` (text, on purpose) from ``008``."""
    if node.tag == _STR:
        if not node.style and _ZERO_PADDED.fullmatch(node.value) and "_" not in node.value \
                and not text.startswith("!", node.start_mark.index):
            raise _NumberForm("a zero-padded number, read by YAML 1.1 as text but by YAML 1.2 (and editors) as "
                              f"the number {int(node.value, 10)}", int(node.value, 10))
        return node.value
    try:
        if node.tag == _INT and node.value.lstrip("-+").isdigit() and not node.value.lstrip("-+").startswith("0"):
            return int(node.value)
        value = _constructor.construct_object(node, deep=True)
    except (ValueError, KeyError, TypeError, OverflowError) as exc:
        reason = str(exc).split(";")[0] if not isinstance(exc, KeyError) else "not a recognised value"
        raise _BadScalar(reason or type(exc).__name__) from None
    bad = _number_form(node, value)
    if bad is not None:
        raise bad
    return value


def load_yaml_text(text: str, file: str) -> Loaded:
    """Parse ``text``; structural problems become issues, syntax errors too."""
    index = LineIndex(file)
    issues: list[Issue] = []
    if len(text.encode("utf-8", "replace")) > MAX_BYTES:
        issues.append(Issue(f"file is larger than {MAX_BYTES} bytes; refusing to parse", file=file, code="yaml-too-large"))
        return Loaded(None, index, issues, text)
    try:
        root = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        what = exc.problem or str(exc)
        if "maximum nesting depth" in what:  # libyaml's limit on nested lists and mappings
            issues.append(Issue("document nests too deeply; refusing to parse", file=file, line=line,
                                code="yaml-too-large",
                                hint="declarations nest a few levels deep: check the brackets and indentation"))
            return Loaded(None, index, issues, text)
        ctx = f" ({exc.context})" if exc.context else ""
        lines = text.splitlines()
        tab = mark is not None and mark.line < len(lines) and "\t" in lines[mark.line][:mark.column + 1]
        issues.append(Issue(f"YAML syntax error: {what}{ctx}", file=file, line=line, code="yaml-syntax",
                            hint="a tab character indents this line, and YAML indents with spaces only: replace it "
                                 "with spaces" if tab else
                                 "check indentation, quotes and colons on this line and the one before"))
        return Loaded(None, index, issues, text)
    except yaml.reader.ReaderError as exc:  # a control character: locate it by its position
        line = text.count("\n", 0, max(exc.position, 0)) + 1
        ch = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "\0")
        issues.append(Issue(f"YAML syntax error: control character U+{ch:04X} is not allowed in YAML text",
                            file=file, line=line, code="yaml-syntax", hint="remove the control character"))
        return Loaded(None, index, issues, text)
    except yaml.YAMLError as exc:  # composer errors without marks
        issues.append(Issue(f"YAML error: {str(exc).splitlines()[0]}", file=file, code="yaml-syntax"))
        return Loaded(None, index, issues, text)
    if root is None:
        return Loaded(None, index, issues, text)
    counter = [0]
    seen_ids: set[int] = set()
    aliased: set[int] = set()

    def build(node: yaml.Node, path: PathKey) -> Any:
        counter[0] += 1
        if counter[0] > MAX_NODES:
            raise _TooBig()
        index.lines.setdefault(path, node.start_mark.line + 1)
        if id(node) in seen_ids:  # an alias: reported once per anchor, at the line that uses it
            if id(node) not in aliased:
                aliased.add(id(node))
                line = index.line_of(path[:-1]) if path and isinstance(path[-1], int) else index.lines.get(path)
                issues.append(Issue("aliases (*name) are not allowed", file=file, line=line,
                                    path=dotted(path), code="yaml-alias", hint="write the value out in full"))
            return None
        seen_ids.add(id(node))
        if node.tag not in ALLOWED_TAGS:
            issues.append(Issue(f"YAML tag {_short_tag(node.tag)!r} is not allowed (plain values, lists and "
                                "mappings only)", file=file, line=node.start_mark.line + 1, path=dotted(path),
                                code="yaml-tag", hint="remove the tag"))
            return None
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for knode, vnode in node.value:
                if knode.tag == "tag:yaml.org,2002:merge":
                    issues.append(index.issue(path, "merge keys (<<) are not allowed", code="yaml-alias",
                                              hint="write the keys out in full"))
                    continue
                if not isinstance(knode, yaml.ScalarNode):
                    issues.append(index.issue(path, "mapping keys must be plain scalars", code="yaml-key"))
                    continue
                try:
                    key = _scalar(knode, text)
                except _BadScalar as bad:
                    issues.append(bad.issue(knode, file, dotted(path + (knode.value,))))
                    continue
                kpath = path + (key,)
                if _not_finite(key):
                    issues.append(_not_finite_issue(knode, file, dotted(path + (knode.value,))))
                    continue
                if isinstance(key, bool):
                    issues.append(Issue(f"key {knode.value!r} is read by YAML as boolean {key}",
                                        file=file, line=knode.start_mark.line + 1, path=dotted(kpath),
                                        code="yaml-bool-key", hint=f"quote it: \"{knode.value}\""))
                if key in out:
                    issues.append(Issue(f"duplicate key {key!r} (first at line {index.lines.get(kpath)})",
                                        file=file, line=knode.start_mark.line + 1, path=dotted(kpath),
                                        code="yaml-duplicate-key", hint="remove or merge one of them"))
                    continue
                index.lines[kpath] = knode.start_mark.line + 1
                out[key] = build(vnode, kpath)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [build(item, path + (i,)) for i, item in enumerate(node.value)]
        try:
            value = _scalar(cast(yaml.ScalarNode, node), text)  # the only other kind of node
        except _BadScalar as bad:
            issues.append(bad.issue(node, file, dotted(path)))
            return None
        if _not_finite(value):
            issues.append(_not_finite_issue(node, file, dotted(path)))
            return None
        return value

    try:
        data = build(root, ())
    except RecursionError:
        issues.append(Issue("document nests too deeply; refusing to expand", file=file, code="yaml-too-large"))
        return Loaded(None, index, issues, text)
    except _TooBig:
        issues.append(Issue(f"document has more than {MAX_NODES} nodes; refusing to expand", file=file,
                            code="yaml-too-large"))
        return Loaded(None, index, issues, text)
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark
        issues.append(Issue(f"YAML value error: {exc.problem}", file=file,
                            line=mark.line + 1 if mark else None, code="yaml-syntax"))
        return Loaded(None, index, issues, text)
    return Loaded(data, index, issues, text)


def _not_finite(value: object) -> bool:
    return isinstance(value, float) and not math.isfinite(value)


def _not_finite_issue(node: yaml.Node, file: str, path: str) -> Issue:
    return Issue(f"{node.value!r} is read by YAML as a non-finite number; codes, ranges and values must be "
                 "finite", file=file, line=node.start_mark.line + 1, path=path, code="yaml-not-finite",
                 hint=f"write a finite number, or quote it as text: \"{node.value}\"")


class _TooBig(Exception):
    pass


def _short_tag(tag: str) -> str:
    return "!!" + tag[len("tag:yaml.org,2002:"):] if tag.startswith("tag:yaml.org,2002:") else tag


def load_yaml_file(path: Path, display: str | None = None) -> Loaded:
    """Read and parse a YAML file; unreadable files raise InputError (exit 2).

    A file that loaded without issues is kept in the parse cache (:mod:`harmonise.spec.parsecache`),
    keyed by its bytes and name: the declared codebooks take ~0.35 s to parse and ~0.05 s to reload."""
    name = display or str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{name}: cannot read file: {exc.strerror or exc}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise InputError(f"{name}:{line}: not valid UTF-8 (byte {exc.start}); save the YAML file as UTF-8") from exc
    key = parsecache.key(raw, name)
    hit = parsecache.get(key)
    if hit is not None:
        data, lines = hit
        return Loaded(data, LineIndex(name, lines), [], text)
    loaded = load_yaml_text(text, name)
    if not loaded.issues and loaded.data is not None:
        parsecache.put(key, (loaded.data, loaded.index.lines))
    return loaded
