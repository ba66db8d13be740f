"""Property-based fuzzing: loader, validator, expression compiler and reader never raise unexpectedly.

Every input either loads or comes back as located issues (crosswalks) or an InputError (data
files). Examples are bounded so the module runs in well under a minute.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from harmonise.checks import check_crosswalk
from harmonise.compile.expr import Context, NameSQL, compile_expr
from harmonise.compile.sql import compile_wave
from harmonise.errors import InputError, Issue
from harmonise.readers.files import SourceFile, open_source
from harmonise.readers.isolation import isolated
from harmonise.spec.crosswalk import Crosswalk
from harmonise.spec.expr import ExprError
from harmonise.spec.project import Project, load_project, validate_model
from harmonise.spec.resolve import resolve_wave
from harmonise.spec.source import SourceMeta
from harmonise.spec.yamlload import load_yaml_text

ROOT = Path(__file__).resolve().parents[1]
HEALTH = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
FUZZ = settings(max_examples=100, deadline=None, database=None, suppress_health_check=HEALTH)

KEYS = ["survey", "title", "waves", "wave", "year", "files", "codebook", "overrides", "targets", "missing", "codes",
        "extended", "system", "source", "map", "range", "table", "expr", "constant", "not_asked", "quality", "transform",
        "notes", "sex", "age", "respondent_id", "country", "year", "<<", "$schema", "mapp", "yes", "1", "-9"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True),
                    st.text(max_size=30), st.sampled_from(["exact", "male", "refused", "2007", "ties", "TIES_2007*.sav",
                                                           "../x", "read_csv('/etc/passwd')", "sex", "x + 1"]))
keys = st.one_of(st.sampled_from(KEYS), st.integers(-10, 10), st.text(max_size=12))
trees = st.recursive(scalars, lambda kids: st.one_of(st.lists(kids, max_size=5),
                                                     st.dictionaries(keys, kids, max_size=6)), max_leaves=40)


@pytest.fixture(scope="module")
def project() -> Project:
    return load_project(ROOT, [ROOT / "mappings" / "ties.yaml"])


@pytest.fixture(scope="module")
def ties_text() -> str:
    return (ROOT / "mappings" / "ties.yaml").read_text()


def _metas(project: Project, cw: Crosswalk) -> dict[str, SourceMeta | None]:
    out: dict[str, SourceMeta | None] = {}
    for w in cw.waves:
        out[w.wave] = project.declared_meta(cw.survey, w.wave) if (cw.survey, w.wave) in project.codebooks else None
    return out


def validate_text(text: str, project: Project) -> list[Issue]:
    """The whole static path a crosswalk takes: load, model, checks, resolution and compilation."""
    loaded = load_yaml_text(text, "mappings/fuzz.yaml")
    cw, issues = validate_model(Crosswalk, loaded)
    if cw is None:
        assert issues, "a crosswalk that fails to load must say why"
        return issues
    assert project.schema is not None
    metas = _metas(project, cw)
    issues += check_crosswalk(cw, project.schema, project.tables, loaded.index, metas)
    for w in cw.waves if not any(i.severity == "error" for i in issues) else []:  # as a build does
        meta = metas.get(w.wave) or SourceMeta(origin="none", variables={})
        plan = resolve_wave(cw, w, project.schema, project.tables, meta.variables)
        compile_wave(plan, meta, project.schema, project.tables)
    for i in issues:
        assert i.message and isinstance(i.format(), str)
    return issues


@FUZZ
@given(st.text(max_size=300))
def test_any_text_loads_or_reports(text: str) -> None:
    loaded = load_yaml_text(text, "x.yaml")
    for i in loaded.issues:
        assert i.file == "x.yaml" and i.message


@FUZZ
@given(trees)
@example(tree={"tagged-union": None})  # a key named as pydantic's own path elements: an IndexError (found by it)
@example(tree={"function-after": 1})
def test_generated_trees_validate_without_exceptions(project: Project, tree: Any) -> None:
    validate_text(yaml.safe_dump(tree, allow_unicode=True), project)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, prefix + (i,))
    return out


@settings(max_examples=30, deadline=None, database=None, suppress_health_check=HEALTH)
@given(st.data())
def test_mutated_real_crosswalk_validates_without_exceptions(project: Project, ties_text: str, data: Any) -> None:
    tree = yaml.safe_load(ties_text)
    for _ in range(data.draw(st.integers(1, 4))):
        paths = [p for p in _paths(tree) if p]
        path = data.draw(st.sampled_from(paths))
        parent = tree
        for part in path[:-1]:
            parent = parent[part]
        action = data.draw(st.sampled_from(["replace", "delete", "rename"]))
        if action == "replace":
            parent[path[-1]] = data.draw(trees)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[data.draw(keys)] = parent.pop(path[-1])
    validate_text(yaml.safe_dump(copy.deepcopy(tree), allow_unicode=True, sort_keys=False), project)


TOKENS = ["x", "sex", "age", "1", "2.5", "'a'", "'refused'", "(", ")", ",", "+", "-", "*", "/", "//", "%", "==", "<",
          " and ", " or ", "not ", " if ", " else ", " in ", "(1, 2)", "case", "missing", "param", "lookup",
          "coalesce", "str", "int", "concat", "substr", "round", "read_csv", ".", "[", "]", "lambda", ":", "'", '"',
          "True", "None", "__import__", ";", "ATTACH", "**"]


@FUZZ
@given(st.lists(st.sampled_from(TOKENS), min_size=1, max_size=25).map("".join))
def test_expressions_compile_or_raise_expr_error(text: str) -> None:
    ctx = Context(resolve=lambda n: NameSQL(f'"{n}"', "NULL", "number") if n in ("x", "sex", "age")
                  else (_ for _ in ()).throw(KeyError(n)),
                  reasons=["refused", "not_available"], params={"p": 1.0}, tables={"t": {1: "a"}})
    try:
        compiled = compile_expr(text, ctx)
    except ExprError:
        return
    code = re.sub(r"'(?:[^']|'')*'", "''", compiled.value)  # outside SQL string literals
    for forbidden in ("read_csv", "ATTACH", "__import__", ";"):
        assert forbidden not in code, compiled.value


@pytest.fixture(scope="module")
def fixture_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    from harmonise.fixtures import generate

    path = generate(ROOT, tmp_path_factory.mktemp("fz"), survey="ties", rows=40)[0]
    return path.read_bytes()


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=HEALTH)
@given(st.data())
def test_mutated_data_files_read_or_raise_input_error(fixture_bytes: bytes, tmp_path: Path, data: Any) -> None:
    raw = bytearray(fixture_bytes)
    kind = data.draw(st.sampled_from(["flip", "truncate", "insert", "zero"]))
    n = len(raw)
    if kind == "flip":
        for pos in data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=12)):
            raw[pos] = data.draw(st.integers(0, 255))
    elif kind == "truncate":
        raw = raw[:data.draw(st.integers(0, n - 1))]
    elif kind == "insert":
        pos = data.draw(st.integers(0, n))
        raw[pos:pos] = data.draw(st.binary(min_size=1, max_size=64))
    else:
        start = data.draw(st.integers(0, n - 1))
        raw[start:start + data.draw(st.integers(1, 4096))] = b"\0" * min(4096, n - start)
    path = tmp_path / "TIES_2007.sav"
    path.write_bytes(bytes(raw))
    try:
        src = open_source(path)  # the header is read in a child process: a reader crash becomes InputError
        # the data records are read in-process by harmonise; here in a child, so that a crash fails the test
        # with a message instead of killing the test run
        isolated(_read_all, src)
    except InputError as exc:
        assert str(exc).startswith(f"{path}: ")


def _read_all(src: SourceFile) -> int:
    rows = 0
    for chunk in src.chunks(list(src.meta.variables)[:8], chunksize=16):
        assert "__row" in chunk.columns
        rows += len(chunk)
    return rows


def test_a_reader_crash_on_the_header_becomes_a_clear_input_error(tmp_path: Path, fixture_bytes: bytes,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import signal

    from harmonise.readers import files

    def segfault(*args: Any, **kwargs: Any) -> None:
        os.kill(os.getpid(), signal.SIGSEGV)

    path = tmp_path / "TIES_2007.sav"
    path.write_bytes(fixture_bytes)
    monkeypatch.setattr(files, "_read", segfault)
    with pytest.raises(InputError) as exc:
        open_source(path)
    assert str(exc.value) == (f"{path}: file is corrupt: the SAV reader crashed on its header (signal 11); "
                              "download it again")


@pytest.mark.parametrize("error, message", [
    ("pyreadstat", "cannot read file (metadata record is malformed)"),
    ("meta", "file is corrupt: its header holds invalid metadata"),
])
def test_every_reader_failure_is_an_input_error(tmp_path: Path, fixture_bytes: bytes, monkeypatch: pytest.MonkeyPatch,
                                                error: str, message: str) -> None:
    import pyreadstat

    from harmonise.readers import files

    def fail(*args: Any, **kwargs: Any) -> None:
        raise pyreadstat.PyreadstatError("metadata record is malformed")

    path = tmp_path / "TIES_2007.sav"
    path.write_bytes(fixture_bytes)
    if error == "pyreadstat":  # the reader itself, so that a child forked from a reader server raises it too
        monkeypatch.setattr(files, "_read", fail)
    else:
        monkeypatch.setattr(files, "_meta_from_pyreadstat", lambda *a: float(None))  # type: ignore[arg-type]
    with pytest.raises(InputError) as exc:
        open_source(path)
    assert str(exc.value).startswith(f"{path}: {message}")


@pytest.mark.parametrize(("text", "message"), [
    ("'employed' if pdwrk === 1 else 'x'", "syntax error at column 21: '===' is not an operator here; write =="),
    ("a !== 2", "syntax error at column 3: '!==' is not an operator here; write !="),
    ("a == 1 && b == 2", "syntax error at column 8: '&&' is not an operator here; write and"),
    ("a == 1 || b == 2", "syntax error at column 8: '||' is not an operator here; write or"),
    ("a = 1", "syntax error at column 3: '=' is not an operator here; write =="),
    ("'x' if c else", "syntax error at column 13: the expression stops after 'else' (something is missing at its end)"),
    ("x +", "syntax error at column 3: the expression stops after '+' (something is missing at its end)"),
])
def test_a_slip_is_said_where_it_is(text: str, message: str) -> None:
    """Python's parser put `===` at column 1 ("expected 'else' after 'if'") and an expression stopping short at
    column 0 ("invalid syntax"): an audit of the author's workflow."""
    from harmonise.spec.expr import ExprError, parse

    with pytest.raises(ExprError) as info:
        parse(text)
    assert str(info.value) == message
