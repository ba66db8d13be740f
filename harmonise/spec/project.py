"""Load a harmonise project: target schema, code tables, crosswalks, source codebooks.

Every problem becomes an :class:`~harmonise.errors.Issue` with file, line and
field path; loading never stops at the first error.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from harmonise.errors import Issue
from harmonise.kept import keep
from harmonise.spec.codebook import SourceCodebook
from harmonise.spec.codetables import CodeMap, Reference, Table, TableSet, table_files
from harmonise.spec.crosswalk import Crosswalk
from harmonise.spec.schema import TargetSchema
from harmonise.spec.source import SourceMeta
from harmonise.spec.yamlload import LineIndex, Loaded, load_yaml_file

M = TypeVar("M", bound=BaseModel)

NOT_CROSSWALKS = {"schema.yaml", "cities.yaml", "indicators.yaml", "aliases.yaml"}


def rel(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names (aliases) of the model reached by ``loc``, for did-you-mean hints."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        fields = getattr(current, "model_fields", None)
        if not fields:
            return []
        f = fields.get(part) or next((fi for fi in fields.values() if fi.alias == part), None)
        if f is None:
            # a dict of models (e.g. targets.<name>) — descend into the value type
            continue
        current = _inner_model(f.annotation)
        if current is None:
            return []
    fields = getattr(current, "model_fields", None)
    if not fields:
        return []
    return [fi.alias or name for name, fi in fields.items()]


def _inner_model(annotation: Any) -> Any:
    args = getattr(annotation, "__args__", None)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for a in args or ():
        inner = _inner_model(a)
        if inner is not None:
            return inner
    return None


def validate_model(model: type[M], loaded: Loaded) -> tuple[M | None, list[Issue]]:
    """Validate loaded YAML against a pydantic model; errors located by line and path."""
    issues = list(loaded.issues)
    if loaded.data is None:
        if not issues:
            issues.append(Issue("file is empty", file=loaded.index.file, code="empty"))
        return None, issues
    if not isinstance(loaded.data, dict):
        issues.append(Issue("the top level must be a mapping of keys", file=loaded.index.file, line=1, code="type"))
        return None, issues
    try:
        obj = model.model_validate(loaded.data)
    except ValidationError as exc:
        # a value the loader refused (an alias, a tag, a non-finite number) reads as empty: not reported twice
        refused = {i.path for i in loaded.issues if i.path}
        issues.extend(i for i in pydantic_issues(exc, model, loaded.index) if i.path not in refused)
        return None, issues
    return obj, issues


def pydantic_issues(exc: ValidationError, model: type[BaseModel], index: LineIndex) -> list[Issue]:
    out: list[Issue] = []
    seen: set[tuple[Any, ...]] = set()
    for err in exc.errors():
        # pydantic's own path elements ('function-after[_check(), Rule]', 'tagged-union[…]'), not a YAML key of
        # that name: a crosswalk whose only key is `tagged-union` left no location and crashed
        loc = tuple(p for p in err["loc"]
                    if not (isinstance(p, str) and p.startswith(("function-", "tagged-union")) and "[" in p))
        # pydantic repeats union alternatives' errors: keep the first per location/type
        key = (loc, err["type"])
        if key in seen:
            continue
        seen.add(key)
        etype = err["type"]
        if etype == "extra_forbidden":
            bad = str(loc[-1])
            if bad == "TODO":
                out.append(index.issue(loc, f"unresolved TODO: {err.get('input')}", code="todo",
                                       hint="resolve the rule (harmonise scaffold left it for a person), "
                                            "then delete the TODO key"))
                continue
            allowed = _allowed_keys(model, loc)
            close = difflib.get_close_matches(bad, allowed, n=1, cutoff=0.6)
            hint = f"did you mean '{close[0]}'?" if close else (f"allowed keys: {', '.join(allowed)}" if allowed else None)
            out.append(index.issue(loc, f"unknown key '{bad}'", code="unknown-key", hint=hint))
        elif etype == "missing":
            out.append(index.issue(loc[:-1], f"required key '{loc[-1]}' is missing", code="missing-key"))
        else:
            msg = err["msg"]
            msg = msg.removeprefix("Value error, ")
            got = err.get("input")
            shown = f" (got {got!r})" if not isinstance(got, (dict, list)) and got is not None else ""
            hint = None
            if etype == "string_type" and isinstance(got, (int, float)) and not isinstance(got, bool):
                hint = f"quote it: \"{got!r}\" (YAML reads an unquoted {got!r} as a number)"
            out.append(index.issue(loc, f"{msg}{shown}", code="type", hint=hint))
    # union branches create noise for the same location: prefer the most specific paths
    return out


class Codebooks(Mapping[tuple[str, str], SourceCodebook]):
    """Declared codebooks by (survey, wave), parsed on first use (they are large)."""

    def __init__(self, root: Path, issues: list[Issue]) -> None:
        self.root = root
        self.paths: dict[tuple[str, str], Path] = {}
        self._loaded: dict[tuple[str, str], SourceCodebook | None] = {}
        self._issues = issues

    def add(self, key: tuple[str, str], path: Path) -> None:
        self.paths[key] = path

    def __getitem__(self, key: tuple[str, str]) -> SourceCodebook:
        if key not in self.paths:
            raise KeyError(key)
        if key not in self._loaded:
            cb, errs = load_codebook(self.paths[key], self.root)
            self._issues.extend(errs)
            self._loaded[key] = cb
        cb = self._loaded[key]
        if cb is None:
            raise KeyError(key)
        return cb

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.paths)

    def __len__(self) -> int:
        return len(self.paths)

    def load_all(self) -> None:
        for key in self.paths:
            self.get(key)


@dataclass
class SurveyEntry:
    """One survey's declarations: its crosswalk as loaded, its waves' declared codebooks, its descriptor."""

    crosswalk: Crosswalk
    file: str  # the crosswalk's path, relative to the project root
    index: LineIndex
    text: str
    set_aside: set[str] = field(default_factory=set)  # targets whose malformed rules were set aside
    waves_aside: set[int] = field(default_factory=set)  # positions of malformed waves (stand-ins, not checked)
    codebook_files: dict[str, str] = field(default_factory=dict)  # wave id → declared codebook (relative path)
    descriptor: Path | None = None  # surveys/<survey>/survey.yaml, where it exists

    @property
    def survey(self) -> str:
        return self.crosswalk.survey


@dataclass
class Project:
    """Everything declared in a harmonise project folder: schema, code tables and one entry per survey."""

    root: Path
    schema: TargetSchema | None = None
    schema_index: LineIndex | None = None
    tables: TableSet = field(default_factory=lambda: TableSet({}))
    surveys: dict[str, SurveyEntry] = field(default_factory=dict)
    issues: list[Issue] = field(default_factory=list)
    codebooks: Codebooks = field(init=False)
    # declared_meta's results by survey and wave, with the codebook and origin they came from (read only)
    _metas: dict[tuple[str, str], tuple[object, str, SourceMeta]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.codebooks = Codebooks(self.root, self.issues)
        self._metas = {}

    @property
    def ok(self) -> bool:
        return not any(i.severity == "error" for i in self.issues)

    @property
    def crosswalks(self) -> dict[str, Crosswalk]:
        """Survey → crosswalk (a view of :attr:`surveys`)."""
        return {s: e.crosswalk for s, e in self.surveys.items()}

    def declared_meta(self, survey: str, wave: str) -> SourceMeta | None:
        """The declared codebook of ``survey`` ``wave`` as source metadata, or None when it has none
        (or it does not load: its issues are in :attr:`issues`). Converted once per project and shared:
        read it, never change it."""
        cb = self.codebooks.get((survey, wave))
        if cb is None:
            return None
        origin = self.surveys[survey].codebook_files[wave]
        hit = self._metas.get((survey, wave))
        if hit is None or hit[0] is not cb or hit[1] != origin:  # converted once: checks, plans, coverage
            hit = self._metas[(survey, wave)] = (cb, origin, cb.to_meta(origin))
        return hit[2]


def load_schema(root: Path) -> tuple[TargetSchema | None, list[Issue], LineIndex]:
    """The target schema, its loading issues and its line index (for checks located in schema.yaml)."""
    path = root / "mappings" / "schema.yaml"
    loaded = load_yaml_file(path, rel(path, root))
    schema, issues = validate_model(TargetSchema, loaded)
    return schema, issues, loaded.index


def load_tables(root: Path) -> tuple[TableSet, list[Issue]]:
    issues: list[Issue] = []
    tables: dict[str, Table] = {}
    for path in table_files(root):
        loaded = load_yaml_file(path, rel(path, root))
        kind = loaded.data.get("kind") if isinstance(loaded.data, dict) else None
        model: type[BaseModel] = Reference if kind == "reference" else CodeMap
        obj, errs = validate_model(model, loaded)
        issues.extend(errs)
        if obj is not None:
            name = obj.table  # type: ignore[attr-defined]
            if name != path.stem:
                issues.append(Issue(f"table name '{name}' differs from the file name '{path.stem}'",
                                    file=rel(path, root), line=loaded.index.line_of(("table",)), path="table",
                                    code="table-name", hint=f"set table: {path.stem}"))
            tables[name] = obj  # type: ignore[assignment]
    cities = None
    cpath = root / "mappings" / "cities.yaml"
    if cpath.exists():
        obj, errs = validate_model(Reference, load_yaml_file(cpath, rel(cpath, root)))
        issues.extend(errs)
        cities = obj
    return TableSet(tables, cities), issues


def crosswalk_paths(root: Path, only: list[Path] | None = None) -> list[Path]:
    if only:
        return only
    folder = root / "mappings"
    return sorted(p for p in folder.glob("*.yaml") if p.name not in NOT_CROSSWALKS)


def load_crosswalk(path: Path, root: Path) -> tuple[Crosswalk | None, Loaded, list[Issue], set[str], set[int]]:
    """The crosswalk at ``path``, its loading issues, the targets set aside and the positions of the waves
    set aside. When some rules, wave fields or survey-wide keys are malformed (or refused by the loader),
    the crosswalk comes back with them set aside or repaired (see :func:`set_aside`), so the checks still
    run on the rest and report all errors at once; the issues keep it from being built. Paths name
    waves by id (``waves[9].year``)."""
    loaded = load_yaml_file(path, rel(path, root))
    obj, issues = validate_model(Crosswalk, loaded)
    aside: set[str] = set()
    waves: set[int] = set()
    if issues and isinstance(loaded.data, dict):
        kept = set_aside(loaded.data, issues)
        if kept is not None:
            repaired, _ = validate_model(Crosswalk, Loaded(kept[0], loaded.index, [], loaded.text))
            if repaired is not None:
                obj, aside, waves = repaired, kept[1], kept[2]
    return obj, loaded, name_waves(issues, loaded), aside, waves


def wave_ids(data: Any) -> tuple[str | None, ...]:
    """The id of each wave of raw crosswalk ``data``, by position: None where a wave has no usable id."""
    waves = data.get("waves") if isinstance(data, dict) else None
    if not isinstance(waves, list):
        return ()
    ids = [w.get("wave") if isinstance(w, dict) else None for w in waves]
    return tuple(str(i) if isinstance(i, (str, int)) and not isinstance(i, bool) and _WAVE_ID.fullmatch(str(i))
                 else None for i in ids)


_WAVE_ID = re.compile(r"[A-Za-z0-9_.-]{1,16}")


def name_waves(issues: list[Issue], loaded: Loaded) -> list[Issue]:
    """``issues`` of a crosswalk with paths naming waves by id (``waves.8.year`` → ``waves[9].year``), as every
    check names them; a wave without a usable id keeps its position. Sets the index's wave ids."""
    loaded.index.wave_ids = wave_ids(loaded.data)
    return [replace(i, path=loaded.index.display(i.path)) if i.path else i for i in issues]


def _rule_at(path: str | None) -> tuple[str | int | None, str] | None:
    """(where, target) when ``path`` lies in a base rule (``targets.x…``: where None), a wave's override
    (``waves.N.overrides.x…`` or ``waves[id].overrides.x…``: where N or id) or a period's override
    (``periods.N.overrides.x…``: where ``"periods"``)."""
    parts = (path or "").split(".")
    if parts[0] == "targets" and len(parts) >= 2:
        return None, parts[1]
    if parts[0] == "waves" and len(parts) >= 4 and parts[2] == "overrides" and parts[1].isdigit():
        return int(parts[1]), parts[3]
    m = re.match(r"waves\[([^\]]*)\]\.overrides\.([^.]+)", path or "")
    if m:
        return m[1], m[2]
    if parts[0] == "periods" and len(parts) >= 4 and parts[2] == "overrides" and parts[1].isdigit():
        return "periods", parts[3]
    return None


SET_ASIDE = "set aside: the rule has errors (reported)"
_MISSING_KEY = re.compile(r"required key '(.*)' is missing")
# Wave fields whose error leaves the wave's rules checkable (a year or notes is not read by a check).
_WAVE_NEUTRAL = {"year": 2000, "notes": None}
# Keys of a crosswalk that no check needs: an error in one drops it (or gives it a stand-in) and the rest is checked.
_TOP_NEUTRAL = {"title": SET_ASIDE, "$schema": None, "notes": None, "respondent_key": None, "design": None}


def set_aside(data: dict[str, Any], issues: list[Issue]) -> tuple[dict[str, Any], set[str], set[int]] | None:
    """A copy of crosswalk ``data`` repaired around its ``issues`` (raw paths, ``waves.N``), the targets set
    aside and the positions of the waves set aside; None when an error lies where nothing can be checked
    safely (the survey code, the list of waves or targets, the survey-wide missing codes, a period's waves).

    - a rule with errors (a base rule, a wave's or a period's override) is replaced by a placeholder
      (``not_asked``) or dropped, and its target set aside: no issue about it is reported but its own;
    - an unknown key outside the rules is dropped (it changed nothing);
    - a malformed ``title``, ``notes``, ``$schema``, ``respondent_key`` or ``design`` is replaced or dropped;
      so is a wave's ``year`` or ``notes``, whose rules are still checked;
    - a wave whose id, files, content, codebook, encoding or overrides are malformed, or that repeats an
      earlier wave's id, is set aside: it keeps its position (so every other wave keeps its lines) as a
      stand-in that recognises no file, and its rules are not checked."""
    rest, aside, waves = copy.deepcopy(data), set[str](), set[int]()
    for issue in issues:
        parts = issue.path.split(".") if issue.path else []
        missing = _MISSING_KEY.fullmatch(issue.message) if issue.code == "missing-key" else None
        if missing:  # the path is the mapping that lacks the key
            parts = [*parts, missing[1]]
        try:
            if not _repair(rest, parts, issue, aside, waves):
                return None
        except (KeyError, IndexError, TypeError, AttributeError, ValueError):
            return None
    if waves:
        ids = wave_ids(rest)
        for n in sorted(waves):
            own = ids[n] if n < len(ids) and ids[n] not in ids[:n] else None
            rest["waves"][n] = {"wave": own or f"_aside_{n}", "year": 2000, "files": [f"_set_aside_{n}_"]}
    return rest, aside, waves


def _repair(rest: dict[str, Any], parts: list[str], issue: Issue, aside: set[str], waves: set[int]) -> bool:
    """Repair ``rest`` at ``parts`` (see :func:`set_aside`); False when it cannot be."""
    unknown = issue.code in ("unknown-key", "todo")
    top = parts[0] if parts else ""
    if top == "targets" and len(parts) >= 2:
        rest["targets"][parts[1]] = {"not_asked": SET_ASIDE}
        aside.add(parts[1])
        return True
    if top in ("waves", "periods") and len(parts) >= 4 and parts[2] == "overrides" and parts[1].isdigit():
        rest[top][int(parts[1])]["overrides"].pop(parts[3], None)
        aside.add(parts[3])
        return True
    if top == "waves" and len(parts) == 1 and "declared twice" in issue.message:  # check the first of each id
        ids = [str(w.get("wave")) if isinstance(w, dict) else None for w in rest["waves"]]
        waves.update(n for n, i in enumerate(ids) if i in ids[:n])
        return True
    if top == "waves" and len(parts) >= 2 and parts[1].isdigit() and int(parts[1]) < len(rest["waves"]):
        n = int(parts[1])
        field_name = parts[2] if len(parts) >= 3 else ""
        wave = rest["waves"][n]
        if field_name == "wave" and len(parts) == 3 and isinstance(wave, dict) and type(wave.get("wave")) is int \
                and _WAVE_ID.fullmatch(str(wave["wave"])):  # wave: 3 — the id meant is plain
            wave["wave"] = str(wave["wave"])
            return True
        if isinstance(rest["waves"][n], dict) and len(parts) == 3 and (unknown or field_name in _WAVE_NEUTRAL):
            if unknown or _WAVE_NEUTRAL[field_name] is None:
                rest["waves"][n].pop(field_name, None)
            else:
                rest["waves"][n][field_name] = _WAVE_NEUTRAL[field_name]
        else:
            waves.add(n)
        return True
    if len(parts) == 1 and (unknown or top in _TOP_NEUTRAL):
        if unknown or _TOP_NEUTRAL[top] is None:
            rest.pop(top, None)
        else:
            rest[top] = _TOP_NEUTRAL[top]
        return True
    if top == "missing" and isinstance(rest.get("missing"), dict) and len(parts) >= 2:
        if len(parts) == 2 and (unknown or parts[1] == "system"):
            rest["missing"].pop(parts[1], None)
            return True
        if len(parts) == 3 and parts[1] == "extended" and isinstance(rest["missing"].get("extended"), dict):
            rest["missing"]["extended"].pop(parts[2], None)
            return True
    return False


def without_set_aside(issues: list[Issue], aside: set[str]) -> list[Issue]:
    """``issues`` minus those about targets whose rules were set aside (their placeholder is not theirs)."""
    if not aside:
        return issues
    return [i for i in issues if (at := _rule_at(i.path)) is None or at[1] not in aside]


def load_codebook(path: Path, root: Path) -> tuple[SourceCodebook | None, list[Issue]]:
    """A declared codebook (None and the issues when it does not load). One that loaded cleanly is kept
    for the rest of the process by its name and bytes (the model is frozen), so a process that loads
    the project again (the validation server, a test session) neither reads its parse nor validates
    it again."""
    name = rel(path, root)
    try:
        raw = path.read_bytes()
    except OSError:
        raw = None  # load_yaml_file says why
    key = (name, hashlib.sha256(raw).hexdigest()) if raw is not None else None
    if key is not None and key in _CODEBOOKS:
        return _CODEBOOKS[key], []
    cb, issues = validate_model(SourceCodebook, load_yaml_file(path, name))
    if key is not None and cb is not None and not issues:
        keep(_CODEBOOKS, key, cb, _CODEBOOKS_MAX)
    return cb, issues


_CODEBOOKS: dict[tuple[str, str], SourceCodebook] = {}
_CODEBOOKS_MAX = 64


def load_project(root: Path, crosswalks: list[Path] | None = None) -> Project:
    """Load schema, tables, the named crosswalks (default: all) and their codebooks."""
    proj = Project(root=root)
    proj.tables, errs = load_tables(root)
    proj.issues.extend(errs)
    proj.schema, errs, proj.schema_index = load_schema(root)
    proj.issues.extend(errs)
    for path in crosswalk_paths(root, crosswalks):
        cw, loaded, errs, aside, waves_aside = load_crosswalk(path, root)
        proj.issues.extend(errs)
        if cw is None:
            continue
        if cw.survey in proj.surveys:
            proj.issues.append(Issue(f"survey '{cw.survey}' is already mapped by {proj.surveys[cw.survey].file}",
                                     file=loaded.index.file, line=loaded.index.line_of(("survey",)), path="survey",
                                     code="duplicate-survey"))
            continue
        desc = root / "surveys" / cw.survey / "survey.yaml"
        entry = SurveyEntry(cw, loaded.index.file, loaded.index, loaded.text, aside, waves_aside,
                            descriptor=desc if desc.is_file() else None)
        proj.surveys[cw.survey] = entry
        for i, wave in enumerate(cw.waves):
            if i in waves_aside:
                continue
            name = wave.codebook or f"codebook_{wave.wave}.yaml"
            cpath = root / "surveys" / cw.survey / name
            if not cpath.exists():
                if wave.codebook:
                    proj.issues.append(loaded.index.issue(("waves", i, "codebook"),
                                                          f"declared codebook {rel(cpath, root)} does not exist",
                                                          code="codebook-missing"))
                continue
            proj.codebooks.add((cw.survey, wave.wave), cpath)
            entry.codebook_files[wave.wave] = rel(cpath, root)
    return proj
