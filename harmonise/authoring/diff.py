"""What changes between two versions of a crosswalk, per target and survey-wave.

Both versions are resolved wave by wave (overrides applied, code tables expanded, survey
defaults applied against the declared codebook) and compared as plans: codes remapped,
added or removed, missing reasons changed, rule kind, source, range, expression and quality
changes, coverage gained or lost (``not_asked`` ↔ measured), and each changed alternative of a
rule (``alternative N``: what files lacking the rule's variables get). With source data, both
versions are compiled by harmonise's own compiler and run on the file; the respondents
whose value or missing reason differs are counted per target.
"""

from __future__ import annotations

import fnmatch
import json
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from harmonise.borrowed import borrow_labels
from harmonise.errors import InputError, Issue, UsageError, ValidationFailed
from harmonise.readers.files import check_staged_names, open_source
from harmonise.spec.crosswalk import Crosswalk, Wave
from harmonise.spec.project import Project, SurveyEntry, load_schema, load_tables, name_waves, validate_model
from harmonise.spec.resolve import TargetPlan, WavePlan, resolve_wave
from harmonise.spec.yamlload import LineIndex, load_yaml_text
from harmonise.store.connect import seal

MEASURED_KINDS = ("map", "range", "table", "expr", "constant")


@dataclass
class Change:
    """One difference for one target in one survey-wave."""

    target: str
    wave: str
    # remapped, code_added, code_removed, missing_changed, system_missing, gained, lost, wave_added,
    # wave_removed, or the rule field that changed (kind, source, range, transform, expr, constant, table, quality),
    # or ``alternative N`` (the rule's N-th alternative as written, notes left out)
    what: str
    old: Any = None
    new: Any = None
    code: Any = None

    def text(self) -> str:
        if self.what in ("gained", "lost"):
            return f"coverage {self.what}: {self.old} → {self.new}"
        if self.what == "code_added":
            was = f" (was missing reason {self.old!r})" if self.old else ""
            return f"code {self.code!r}: added → {_show(self.new)}{was}"
        if self.what == "code_removed":
            now = f"missing reason {self.new!r}" if self.new else "unmapped"
            return f"code {self.code!r}: removed (was {_show(self.old)}; now {now})"
        if self.code is not None:
            return f"code {self.code!r}: {self.what.replace('_', ' ')} {_show(self.old)} → {_show(self.new)}"
        return f"{self.what}: {_show(self.old)} → {_show(self.new)}"


def _show(v: Any) -> str:
    return "(none)" if v is None else repr(v) if isinstance(v, str) else str(v)


@dataclass
class DiffResult:
    survey: str
    old: str
    new: str
    changes: list[Change] = field(default_factory=list)
    respondents: dict[tuple[str, str], int] = field(default_factory=dict)  # (wave, target) → rows changed
    files: dict[str, str] = field(default_factory=dict)  # wave → data file used
    uncounted: list[str] = field(default_factory=list)  # waves with changed rules no data file was counted for
    data: str | None = None  # the --data given (several: joined by ", ")

    def to_dict(self) -> dict[str, Any]:
        return {"survey": self.survey, "old": self.old, "new": self.new,
                "changes": [asdict(c) for c in self.changes],
                "respondents": [{"wave": w, "target": t, "changed": n} for (w, t), n in self.respondents.items()],
                "files": self.files, "uncounted": self.uncounted}


def read_version(spec: str, cwd: Path | None = None, project: Path | None = None) -> tuple[str, str]:
    """Text of a crosswalk version: a file path, or ``REV:path`` read with ``git show`` in ``cwd`` (the current
    folder), else, outside a repository, in the ``project``'s."""
    path = Path(spec)
    if path.is_file():
        return path.read_text(encoding="utf-8"), str(path)
    if ":" in spec:
        if spec.startswith("-"):  # git would read it as an option (--output=FILE writes a file)
            raise UsageError(f"{spec}: a git revision cannot start with '-'; give REV:path such as "
                             "HEAD~1:mappings/ess.yaml")
        try:
            proc = subprocess.run(["git", "show", spec], cwd=cwd, capture_output=True, text=True, check=False)
            if proc.returncode != 0 and "not a git repository" in proc.stderr and project is not None:
                proc = subprocess.run(["git", "show", spec], cwd=project, capture_output=True, text=True, check=False)
        except OSError as exc:
            raise UsageError(f"{spec}: cannot run git ({exc})") from exc
        if proc.returncode != 0:
            first = (proc.stderr.strip().splitlines() or ["unknown error"])[0]
            raise UsageError(f"{spec}: git show failed: {first}")
        return proc.stdout, spec
    raise UsageError(f"{spec}: no such file (give a path, or REV:path for a git revision such as "
                     "HEAD~1:mappings/ess.yaml)")


def parse_version(text: str, name: str) -> Crosswalk:
    loaded = load_yaml_text(text, name)
    obj, issues = validate_model(Crosswalk, loaded)
    if obj is None or any(i.severity == "error" for i in issues):
        raise ValidationFailed(name_waves(issues, loaded), f"{name} is not a valid crosswalk")
    return obj


def _plans(cw: Crosswalk, project: Project) -> dict[str, WavePlan]:
    assert project.schema is not None
    out = {}
    for w in cw.waves:
        declared = project.declared_meta(cw.survey, w.wave) if (cw.survey, w.wave) in project.codebooks else None
        meta = declared.variables if declared else None
        out[w.wave] = resolve_wave(cw, w, project.schema, project.tables, meta)
    return out


def compare_plans(a: TargetPlan, b: TargetPlan, wave: str) -> list[Change]:
    """Differences between two resolved plans of the same target and wave."""
    t = a.target
    out: list[Change] = []
    measured_a, measured_b = a.kind in MEASURED_KINDS, b.kind in MEASURED_KINDS
    if a.kind == "not_asked" and measured_b:
        return [Change(t, wave, "gained", "not asked", b.rule_text)]
    if measured_a and b.kind == "not_asked":
        return [Change(t, wave, "lost", a.rule_text, "not asked")]
    if a.kind != b.kind:
        out.append(Change(t, wave, "kind", a.kind, b.kind))
    for attr in ("source", "range", "transform", "expr", "constant", "table", "quality", "not_asked"):
        va, vb = getattr(a, attr), getattr(b, attr)
        if va != vb:
            out.append(Change(t, wave, attr, list(va) if isinstance(va, tuple) else va,
                              list(vb) if isinstance(vb, tuple) else vb))
    if a.kind in ("map", "table") or b.kind in ("map", "table"):
        for code in sorted(set(a.values) | set(b.values), key=lambda c: (isinstance(c, str), str(c))):
            va, vb = a.values.get(code), b.values.get(code)
            if code in a.values and code in b.values:
                if va != vb or type(va) is not type(vb):
                    out.append(Change(t, wave, "remapped", va, vb, code))
            elif code in b.values:
                out.append(Change(t, wave, "code_added", a.missing.reasons.get(code), vb, code))
            else:
                out.append(Change(t, wave, "code_removed", va, b.missing.reasons.get(code), code))
    for code in sorted(set(a.missing.reasons) | set(b.missing.reasons), key=lambda c: (isinstance(c, str), str(c))):
        ra, rb = a.missing.reasons.get(code), b.missing.reasons.get(code)
        if ra != rb and code not in a.values and code not in b.values:
            out.append(Change(t, wave, "missing_changed", ra, rb, code))
    if a.missing.system != b.missing.system:
        out.append(Change(t, wave, "system_missing", a.missing.system, b.missing.system))
    return out


def diff_crosswalks(old: Crosswalk, new: Crosswalk, project: Project) -> list[Change]:
    """Every change per target and survey-wave, in wave then schema order."""
    assert project.schema is not None
    pa, pb = _plans(old, project), _plans(new, project)
    changes: list[Change] = []
    for w in [*pa, *(x for x in pb if x not in pa)]:
        if w not in pb:
            changes.append(Change("*", w, "wave_removed", w, None))
            continue
        if w not in pa:
            changes.append(Change("*", w, "wave_added", None, w))
            continue
        ra, rb = _rules(old, w, project), _rules(new, w, project)
        for name in project.schema.names:
            a, b = pa[w].targets.get(name), pb[w].targets.get(name)
            if a is not None and b is not None:
                changes.extend(compare_plans(a, b, w))
                changes.extend(_alternatives(name, w, ra.get(name), rb.get(name)))
    return changes


def _rules(cw: Crosswalk, wave: str, project: Project) -> dict[str, Any]:
    """Each target's rule in ``wave`` (overrides applied), as written."""
    from harmonise.spec.resolve import wave_rules

    assert project.schema is not None
    return {r.target: r.rule for r in wave_rules(cw, cw.wave(wave), project.schema) if r.rule is not None}


def _alternatives(target: str, wave: str, a: Any, b: Any) -> list[Change]:
    """Changed alternatives of a rule (what files lacking the rule's variables are harmonised by; the plans
    compared are the rules in force against the declared codebook), notes left out."""
    if a is None or b is None:
        return []
    old, new = ([{k: v for k, v in x.items() if k != "notes" and v is not None}
                 for x in (r.alternatives or [])] for r in (a, b))
    return [Change(target, wave, f"alternative {i + 1}", old[i] if i < len(old) else None,
                   new[i] if i < len(new) else None)
            for i in range(max(len(old), len(new))) if (old[i] if i < len(old) else None) != (new[i] if i < len(new) else None)]


def _files(data: list[Path]) -> list[Path]:
    """The data files of every ``--data`` given (each file, and the readable files under each folder), as
    validate and build list them (:func:`harmonise.discover.data_files`)."""
    from harmonise.discover import data_files as listed

    return listed(data)


def data_files(data: list[Path], waves: list[Wave]) -> dict[str, list[Path]]:
    """The files under ``data`` matching each wave's patterns (a wave's country or city files: all of them)."""
    files = _files(data)
    out: dict[str, list[Path]] = {}
    for w in waves:
        for f in files:
            if any(fnmatch.fnmatch(f.name.lower(), p.lower()) for p in w.files):
                out.setdefault(w.wave, []).append(f)
    return out


def _cumulative(path: Path, src: Any, cw: Crosswalk) -> list[str]:
    """The waves of ``cw`` whose rows ``path`` holds when it holds several waves' rows (a cumulative file, told
    apart by the crosswalk's one content variable, read whole), else nothing. A file with rows of no known wave
    beside them fails as a build does (``mixed-waves``): its rows would be counted for no wave or a wrong one."""
    from harmonise.rounds import split_waves

    split = split_waves(path, src, [cw])
    if split is None:
        return []
    if isinstance(split, Issue):
        raise ValidationFailed([split], f"{path.name} holds rows of no known {cw.survey} wave")
    return [w.wave for _, w, _ in split[0]]


def _by_wave(data: list[Path], waves: list[Wave], cw: Crosswalk, encoding: str | None
             ) -> tuple[dict[str, list[Path]], set[Path]]:
    """The files under ``data`` for each wave: a file holding several waves' rows (a cumulative file, whatever its
    name) for each wave it holds, and for no other; any other file for the wave validate and build recognise it
    as (:func:`harmonise.discover.recognise`: by its content variables, else by its name); and the cumulative
    files."""
    from harmonise.recognition import Options, recognise

    by_name = data_files(data, waves)
    files = _files(data)
    out: dict[str, list[Path]] = {}
    several: set[Path] = set()
    for f in files:
        try:
            src = open_source(f, encoding)
            held = _cumulative(f, src, cw)
            recognised = [] if held else [w.wave for _, w in recognise(f, src, [cw], Options())[0]]
        except InputError:  # unreadable: counted by its name as before (count_changed says why)
            held, recognised = [], [w for w, paths in by_name.items() if f in paths]
        if held:
            several.add(f)
        for w in (w.wave for w in waves if w.wave in (held or recognised)):
            out.setdefault(w, []).append(f)
    return {w.wave: out[w.wave] for w in waves if w.wave in out}, several


def count_changed(old: Crosswalk, new: Crosswalk, project: Project, wave: str, path: Path,
                  targets: list[str], encoding: str | None = None, several: bool | None = None) -> dict[str, int]:
    """Respondents of ``path`` whose value or missing reason of each target differs between versions; of a file
    holding several waves' rows (a cumulative file; ``several``, found here when None), only the rows of ``wave``
    (by its content variable)."""
    from harmonise.compile.sql import compile_wave
    from harmonise.rounds import content_text, content_wanted

    assert project.schema is not None
    src, _ = borrow_labels(open_source(path, encoding), project.declared_meta(new.survey, wave))  # as a build reads it
    only = [(vm.name, content_wanted(allowed)) for n, allowed in (new.wave(wave).content or {}).items()
            if (vm := src.meta.get(n)) is not None] \
        if (_cumulative(path, src, new) if several is None else several) else []
    extended = {n for n, vm in src.meta.variables.items() if vm.type == "numeric"} if src.format == "dta" else set()
    compiled, columns = [], []
    for cw in (old, new):
        plan = resolve_wave(cw, cw.wave(wave), project.schema, project.tables, src.meta.variables)
        c = compile_wave(plan, src.meta, project.schema, project.tables, extended)
        if c.errors:
            raise ValidationFailed([Issue(e.message, path=f"targets.{e.target}", survey=cw.survey, wave=wave)
                                    for e in c.errors], f"{cw.survey} wave {wave} does not compile against {path.name}")
        compiled.append(c.sql)
        columns += [n for n in plan.sources() if src.meta.get(n) is not None and n not in columns]
    counts = dict.fromkeys(targets, 0)
    con = seal(duckdb.connect(":memory:"), lock=False)  # the diff goes to standard output
    try:
        names = list(dict.fromkeys(src.meta.get(n).name for n in columns))  # type: ignore[union-attr]
        check_staged_names(path, names, src.meta)
        read = names + [c for c, _ in only if c not in names]
        for chunk in src.chunks(read):
            for column, wanted in only:  # a cumulative file: this wave's rows
                mine = [v for v in chunk[column].dropna().unique() if content_text(v) in wanted]
                chunk = chunk[chunk[column].isin(mine)].reset_index(drop=True)
            if not len(chunk):
                continue
            con.register("src", chunk)
            con.execute(f"CREATE OR REPLACE TEMP TABLE a AS {compiled[0]}")
            con.execute(f"CREATE OR REPLACE TEMP TABLE b AS {compiled[1]}")
            con.unregister("src")
            for t in targets:
                var = project.schema.variable(t)
                cols = [t] + ([var.missing_column] if var.has_missing_column else [])
                cond = " OR ".join(f'a."{c}" IS DISTINCT FROM b."{c}"' for c in cols)
                counts[t] += con.execute(f"SELECT count(*) FROM a JOIN b USING (source_row) WHERE {cond}").fetchall()[0][0]
    finally:
        con.close()
    return counts


def diff(root: Path, old_spec: str, new_spec: str, data: Path | Sequence[Path] | None = None,
         encoding: str | None = None) -> DiffResult:
    """Compare two versions of a crosswalk (paths or ``REV:path``), optionally counting respondents on the files
    of ``data`` (a file or folder, or several)."""
    schema, issues, _ = load_schema(root)
    tables, more = load_tables(root)
    if schema is None:
        raise ValidationFailed(issues + more, "mappings/schema.yaml does not load")
    project = Project(root=root, schema=schema, tables=tables)
    old = parse_version(*read_version(old_spec, project=root))  # outside a repository, REV:path is the project's
    new = parse_version(*read_version(new_spec, project=root))
    if old.survey != new.survey:
        raise UsageError(f"the versions map different surveys ('{old.survey}' and '{new.survey}')")
    _add_codebooks(project, new, read_version(new_spec, project=root)[1])
    result = DiffResult(new.survey, old_spec, new_spec, diff_crosswalks(old, new, project))
    given = [] if data is None else [data] if isinstance(data, Path) else list(data)
    if given:
        absent = [f"{d}: no such file or folder" for d in given if not d.exists()]
        if absent:
            raise UsageError("\n".join(absent))
        named = ", ".join(map(str, given))
        common = [w for w in new.waves if any(o.wave == w.wave for o in old.waves)]
        changed = [w for w in common if any(c.wave == w.wave and c.target != "*" for c in result.changes)]
        by_wave, several = _by_wave(given, changed, new, encoding) if changed else ({}, set())
        for wave, paths in by_wave.items():
            targets = sorted({c.target for c in result.changes if c.wave == wave and c.target != "*"},
                             key=schema.names.index)
            if targets:
                under = ", ".join(str(d) for d in given if any(d == f or d in f.parents for f in paths))
                result.files[wave] = str(paths[0]) if len(paths) == 1 else f"the {len(paths)} files under {under}"
                for path in paths:
                    for t, n in count_changed(old, new, project, wave, path, targets, encoding,
                                              path in several).items():
                        result.respondents[(wave, t)] = result.respondents.get((wave, t), 0) + n
        result.data = named
        result.uncounted = [w.wave for w in changed if w.wave not in result.files]
    return result


def _add_codebooks(project: Project, cw: Crosswalk, name: str) -> None:
    """Register the declared codebooks of ``cw``'s waves (the new version's) in ``project``."""
    entry = project.surveys.setdefault(cw.survey, SurveyEntry(cw, name, LineIndex(name), ""))
    for w in cw.waves:
        path = project.root / "surveys" / cw.survey / (w.codebook or f"codebook_{w.wave}.yaml")
        if path.is_file():
            project.codebooks.add((cw.survey, w.wave), path)
            entry.codebook_files[w.wave] = str(path.relative_to(project.root))


def render_text(r: DiffResult) -> str:
    """Changes grouped by survey-wave and target, with the respondent count where measured."""
    if not r.changes:
        return f"{r.survey}: no changes between {r.old} and {r.new}"
    lines = [f"{r.survey}: {r.old} → {r.new}"]
    last = None
    for c in r.changes:
        if (c.wave, c.target) != last:
            last = (c.wave, c.target)
            n = r.respondents.get(last)
            count = f"  ({n:,} respondent(s) change value)" if n is not None else ""
            lines.append(f"wave {c.wave}  {c.target}{count}")
        lines.append(f"    {c.text()}")
    lines += [f"(respondents counted on {path} for wave {wave})" for wave, path in r.files.items()]
    if r.uncounted:
        holds = "hold" if r.data is not None and ", " in r.data else "holds"
        lines.append(f"(no respondents counted for wave(s) {', '.join(r.uncounted)}: {r.data} {holds} no file "
                     "recognised as those waves — give a file of each, or check the files' round variable and names)")
    return "\n".join(lines)


def render_json(r: DiffResult) -> str:
    return json.dumps(r.to_dict(), indent=2, default=str)
