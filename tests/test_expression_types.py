"""Expression types: what `harmonise validate` (no data) refuses is what the compiler refuses, located at the rule,
and what the compiler accepts runs in DuckDB; a DuckDB error a rule causes at `--data`/`build` time is the rule's
error (exit 1, file:line), never an internal error or a database of another version."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from conftest import ESS8, run
from hypothesis import given, settings
from hypothesis import strategies as st

from harmonise.compile.expr import Context, NameSQL, compile_expr
from harmonise.compile.sqltext import quote_ident
from harmonise.spec.expr import ExprError

RULE = "expr: \"'employed' if pdwrk == 1 else ('unemployed' if uempla == 1 else 'inactive')\""
DERIVE = "derive: {expr: \"missing('invalid') if year_of_arrival > year else year - year_of_arrival\"}"
HINT = " — see docs/expressions.md for what each operator and function takes"


def _edit(project: Path, file: str, old: str, new: str) -> int:
    """Replace ``old`` (once) by ``new`` in ``project``'s ``file``; the line ``new`` starts on."""
    path = project / file
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1
    path.write_text(text.replace(old, new), encoding="utf-8")
    return text[:text.index(old)].count("\n") + 1


def _waves(project: Path) -> str:
    from conftest import waves_of

    return ", ".join(waves_of("ess", project))


@pytest.mark.parametrize(("expr", "why"), [
    ("'employed' if length(agea) > 1 else 'inactive'",
     "length() needs text, but agea is a number; convert a number with str(), or use a variable holding text"),
    ("upper(1)", "upper() needs text, but 1 is a number; convert a number with str(), or use a variable holding text"),
    ('\\"a\\" * 3', "arithmetic '*' needs numbers, but 'a' is text; use numbers, or concat() to join text"),
    ("str(gndr) + 1", "cannot add text and a number; use concat(a, str(b))"),
    ("'employed' if cntry == 1 else 'inactive'",
     ("cannot compare text with a number: cntry is text and 1 is a number; quote the code (cntry == '1'), or compare "
     "int(cntry) with 1")),
    ("'employed' if agea > 'x' else 'inactive'",
     "cannot compare text with a number: 'x' is text and agea is a number; compare agea with a number, not quoted text"),
    ("'employed' if cntry in (1, 2) else 'inactive'",
     ("cannot compare text with a number: cntry is text and 1 is a number; quote the code (cntry == '1'), or compare "
     "int(cntry) with 1")),
    ("'employed' if cntry else 'inactive'",
     "'if' needs a condition (true/false), but cntry is text; compare it, e.g. cntry == 'code'"),
    ("'employed' if abs(cntry) > 1 else 'inactive'",
     "abs() needs a number, but cntry is text; convert text with int() or float()"),
    ("'employed' if substr(cntry, '1', 1) == 'F' else 'inactive'",
     "substr() argument 2 needs a number, but '1' is text; convert text with int() or float()"),
])
def test_static_validate_refuses_what_the_compiler_refuses_at_the_rule(project: Path, expr: str, why: str) -> None:
    line = _edit(project, "mappings/ess.yaml", RULE, f'expr: "{expr}"')
    code, out, err = run("validate", str(project / "mappings" / "ess.yaml"), project=project)
    assert code == 1
    assert err.splitlines()[0] == (f"error: mappings/ess.yaml:{line} targets.labour_status.expr: waves {_waves(project)}: "
                                   f"expr: {why}{HINT}")
    code, out, _ = run("validate", str(project / "mappings" / "ess.yaml"), "--format", "json", project=project)
    found = json.loads(out)["issues"]
    assert [(i["code"], i["file"], i["line"], i["path"]) for i in found] == [
        ("expr-type", "mappings/ess.yaml", line, "targets.labour_status.expr")]


def test_a_concat_of_literals_is_checked_against_the_target_codes(project: Path) -> None:
    line = _edit(project, "mappings/ess.yaml", RULE, "expr: \"concat('employed', 1)\"")
    code, _, err = run("validate", str(project / "mappings" / "ess.yaml"), project=project)
    assert code == 1
    assert err.splitlines()[0] == (f"error: mappings/ess.yaml:{line} targets.labour_status.expr: waves {_waves(project)}: "
                                   "expression returns 'employed1', not a code of labour_status")


def test_a_rule_that_does_not_compile_fails_data_and_build_at_the_rule_with_exit_1(project: Path, tmp_path: Path) -> None:
    """Was: `validate --data` printed `internal error: BinderException` (exit 2, nothing on stdout with --format
    json); `build` blamed the database (`another version of harmonise built it`)."""
    line = _edit(project, "mappings/ess.yaml", RULE, "expr: \"'employed' if length(agea) > 1 else 'inactive'\"")
    why = "length() needs text, but agea is a number; convert a number with str(), or use a variable holding text"
    code, out, err = run("validate", "--data", str(ESS8.parent), project=project)
    assert code == 1
    assert "internal error" not in err
    # said once: the static type check at the rule's field (the file's compile error of the same rule is dropped)
    assert [x.split(": expr: ")[-1].split(" — ")[0] for x in err.splitlines()] == [why]
    code, out, _ = run("validate", "--data", str(ESS8.parent), "--format", "json", project=project)
    assert code == 1
    assert {(i["code"], i["line"]) for i in json.loads(out)["issues"]} == {("expr-type", line)}
    db = tmp_path / "new.duckdb"
    code, _, err = run("build", "--data", str(ESS8.parent), "--db", str(db), project=project)
    assert (code, err.splitlines()) == (1, [f"error: mappings/ess.yaml:{line - 1} targets.labour_status: {why}",
                                            "build failed; the previous database is unchanged: 1 error(s)"])
    assert not db.exists()
    code, _, err = run("sql", "ess", "8", project=project)
    assert (code, err.splitlines()[0]) == (1, f"error: mappings/ess.yaml:{line - 1} targets.labour_status: {why}")


@pytest.mark.parametrize(("expr", "why"), [
    ("upper(year)", ("upper() needs text, but year is a number; convert a number with str(), or use a variable holding "
                    "text")),
    ("'x' * 3", "arithmetic '*' needs numbers, but 'x' is text; use numbers, or concat() to join text"),
])
def test_a_derivation_of_the_wrong_types_is_an_error_at_schema_yaml_said_once(project: Path, expr: str, why: str) -> None:
    line = _edit(project, "mappings/schema.yaml", DERIVE, f'derive: {{expr: "{expr}"}}')
    from harmonise.spec.project import load_project

    pos = [v.name for v in load_project(project).schema.variables].index("years_since_arrival")  # type: ignore[union-attr]
    want = f"error: mappings/schema.yaml:{line} variables.{pos}.derive.expr: years_since_arrival: {why}{HINT}"
    code, _, err = run("validate", project=project)
    assert (code, err.splitlines()[0]) == (1, want)
    code, _, err = run("validate", "--data", str(ESS8.parent), project=project)
    assert code == 1
    assert [e for e in err.splitlines() if e.startswith("error:")] == [want]


STATEMENT = 'expr: "abs(year - birth_year - age) <= 2"'


@pytest.mark.parametrize(("expr", "code", "why"), [
    ("abs(year - birth_year - age)", "expr-type", ("gives a number, not true or false — a consistency statement is "
     "true or false for each respondent, e.g. abs(year - birth_year - age) <= 2; see docs/expressions.md")),
    ("age_at_arival > 0", "bad-expression", ("refers to unknown variable(s) ['age_at_arival'] — name variables of "
     "the schema")),
    ("labour_status == 'employd'", "bad-target-code", ("comparison with labour_status: 'employd' is not a code of "
     "labour_status (did you mean 'employed'?)")),
    ("open('x') == 1", "bad-expression", None),
])
def test_a_consistency_statement_that_cannot_be_judged_is_an_error_at_schema_yaml(project: Path, expr: str, code: str,
                                                                                   why: str | None) -> None:
    line = _edit(project, "mappings/schema.yaml", STATEMENT, f'expr: "{expr}"')
    from harmonise.spec.project import load_project

    pos = [c.name for c in load_project(project).schema.consistency].index("age_agrees_with_birth_year")  # type: ignore[union-attr]
    rc, out, _ = run("validate", "--format", "json", project=project)
    found = [i for i in json.loads(out)["issues"] if i["severity"] == "error"]
    assert rc == 1 and [(i["code"], i["file"], i["line"], i["path"]) for i in found] == [
        (code, "mappings/schema.yaml", line, f"consistency.{pos}.expr")]
    if why is not None:
        rc, _, err = run("validate", project=project)
        assert err.splitlines()[0] == (f"error: mappings/schema.yaml:{line} consistency.{pos}.expr: "
                                       f"age_agrees_with_birth_year: {why}")


def test_a_transform_may_give_missing_with_its_reason(project: Path, tmp_path: Path) -> None:
    """docs/expressions.md: a `transform` is an expression of `x`, and `missing('reason')` one of its values. Was:
    every such in-range value `has no mapping` at `--data` time."""
    _edit(project, "mappings/ess.yaml", "    range: [13, 120]\n    missing: {999: not_available}",
          "    range: [13, 120]\n    transform: \"x if x > 30 else missing('refused')\"\n    missing: {999: not_available}")
    db = tmp_path / "t.duckdb"
    code, _, err = run("build", "--data", str(ESS8.parent), "--db", str(db), project=project)
    assert code == 0, err
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT age_missing, count(*), min(age) > 30 FROM respondents GROUP BY 1 ORDER BY 1 "
                           "NULLS FIRST").fetchall() == [(None, 1750, True), ("not_available", 1, None),
                                                         ("refused", 319, None)]
        assert con.execute("SELECT source_code, missing_reason, n FROM harmonisation_report WHERE target = 'age' "
                           "AND missing_reason = 'refused'").fetchall() == [("[13, 120]", "refused", 319)]


def test_a_text_transform_is_refused(project: Path) -> None:
    line = _edit(project, "mappings/ess.yaml", "    range: [13, 120]\n    missing: {999: not_available}",
                 "    range: [13, 120]\n    transform: \"str(x)\"\n    missing: {999: not_available}")
    code, _, err = run("validate", str(project / "mappings" / "ess.yaml"), project=project)
    assert (code, err.splitlines()[0]) == (1, (f"error: mappings/ess.yaml:{line + 1} targets.age.transform: waves "
                                              f"{_waves(project)}: transform: transform gives text, but a range rule's "
                                              f"value is a number (age is integer){HINT}"))


def test_a_duckdb_error_a_rule_causes_names_the_rule(project: Path, monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    """What the compiler lets through and DuckDB refuses (here: length() with its type check taken away) is the
    rule's error, found by running each rule alone on the file: exit 1 at file:line, never `internal error`."""
    from harmonise.compile import expr

    monkeypatch.setattr(expr._Compiler, "f_length", lambda self, node: self._simple(node, "length({0})", "number"))
    monkeypatch.setattr("harmonise.checks.crosswalk.expr_problem", lambda *a, **kw: (None, None))
    monkeypatch.setattr("harmonise.checks._CHECKED", {})  # static issues kept by content: checked afresh
    monkeypatch.setattr("harmonise.checks._WAVES", {})
    line = _edit(project, "mappings/ess.yaml", RULE, "expr: \"'employed' if length(agea) > 1 else 'inactive'\"")
    for args in (("validate", "--data", str(ESS8.parent)), ("build", "--data", str(ESS8.parent), "--db",
                                                               str(tmp_path / "x.duckdb"))):
        code, _, err = run(*args, project=project)
        assert code == 1, err
        assert err.splitlines()[0] == (
            f"error: mappings/ess.yaml:{line} targets.labour_status.expr: {ESS8}: the rule of labour_status (ess wave 8) "
            "fails in DuckDB on this file (Binder Error: No function matches the given name and argument types "
            "'length(DOUBLE)'. You might need to add explicit type casts.) — make the rule fit the file's values and "
            "types (compare text with quoted codes, convert with int(), float() or str(), guard with if/else)")


# --- every expression the compiler accepts runs in DuckDB; every ill-typed one is refused -----------------------

TYPES = {"agea": "number", "gndr": "number", "cntry": "string", "region": "string"}
ROWS = [(15.0, 1.0, "FR", "FR10"), (None, 2.0, "x1", None), (-3.5, None, None, "")]


def _ctx() -> Context:
    return Context(resolve=lambda n: NameSQL(quote_ident(n), "NULL", TYPES[n]),  # type: ignore[arg-type]
                   reasons=["refused", "invalid"], params={"child_age": 16.0}, tables={"t": {1: "a", 2: "b"}})


def _typed(t: str, depth: int) -> st.SearchStrategy[str]:
    """Well-typed expressions of type ``t`` (number, string, boolean)."""
    leaves = {"number": st.sampled_from(["agea", "gndr", "1", "2.5", "-3", "param('child_age')"]),
              "string": st.sampled_from(["cntry", "region", "'FR'", "'x'"]),
              "boolean": st.sampled_from(["True", "is_missing(agea)", "cntry == 'FR'", "agea > 1"])}[t]
    if depth <= 0:
        return leaves
    n, s, b = (_typed(x, depth - 1) for x in ("number", "string", "boolean"))
    one = {
        "number": [st.tuples(n, st.sampled_from("+-*/%"), n).map(lambda p: f"({p[0]} {p[1]} {p[2]})"),
                   s.map(lambda a: f"length({a})"), n.map(lambda a: f"abs({a})"), st.tuples(n, st.sampled_from(["0", "1", "-1", "param('child_age')"])).map(
                       lambda p: f"round({p[0]}, {p[1]})"), s.map(lambda a: f"int({a})"), st.tuples(n, n).map(
                       lambda p: f"least({p[0]}, {p[1]})"), st.tuples(b, n, n).map(
                       lambda p: f"({p[1]} if {p[0]} else {p[2]})"), n.map(lambda a: f"-{a}")],
        "string": [s.map(lambda a: f"upper({a})"), st.tuples(n, s).map(lambda p: f"concat({p[1]}, {p[0]})"),
                   n.map(lambda a: f"str({a})"), st.tuples(s, n, n).map(lambda p: f"substr({p[0]}, {p[1]}, {p[2]})"),
                   st.tuples(s, s).map(lambda p: f"({p[0]} + {p[1]})"), n.map(lambda a: f"lookup('t', {a})"),
                   st.tuples(b, s, s).map(lambda p: f"case({p[0]}, {p[1]}, {p[2]})")],
        "boolean": [st.tuples(n, st.sampled_from(["==", "!=", "<", ">="]), n).map(lambda p: f"({p[0]} {p[1]} {p[2]})"),
                    st.tuples(s, s).map(lambda p: f"({p[0]} == {p[1]})"), b.map(lambda a: f"not {a}"),
                    st.tuples(b, b).map(lambda p: f"({p[0]} and {p[1]})"), s.map(lambda a: f"{a} in ('FR', 'x')"),
                    n.map(lambda a: f"{a} not in (1, 2)")],
    }[t]
    return st.one_of(leaves, *one)


def test_round_takes_a_number_of_digits_written_out() -> None:
    """DuckDB binds round()'s precision only as a constant (was: a Binder Error at run time, found by the test below)."""
    with pytest.raises(ExprError, match=r"^round\(\): the number of digits must be a number written out "
                                        r"\(round\(x, 1\)\) or param\(\), not agea$"):
        compile_expr("round(2.5, agea)", _ctx())


def _ill_typed(depth: int) -> st.SearchStrategy[str]:
    """Expressions with one operand of the wrong type, inside a well-typed context or not."""
    n, s = _typed("number", depth), _typed("string", depth)
    wrong = st.one_of(
        n.map(lambda a: f"length({a})"), n.map(lambda a: f"upper({a})"), s.map(lambda a: f"abs({a})"),
        st.tuples(s, n).map(lambda p: f"({p[0]} == {p[1]})"), st.tuples(n, s).map(lambda p: f"({p[0]} < {p[1]})"),
        st.tuples(s, n).map(lambda p: f"({p[0]} * {p[1]})"), st.tuples(s, n).map(lambda p: f"({p[0]} + {p[1]})"),
        s.map(lambda a: f"-{a}"), s.map(lambda a: f"not {a}"), s.map(lambda a: f"('a' if {a} else 'b')"),
        s.map(lambda a: f"{a} in (1, 2)"), n.map(lambda a: f"{a} in ('a',)"), s.map(lambda a: f"lookup('t', {a})"),
        st.tuples(s, s).map(lambda p: f"substr({p[0]}, {p[1]}, 1)"), st.tuples(n, s).map(lambda p: f"least({p[0]}, {p[1]})"))
    return st.one_of(wrong, wrong.map(lambda w: f"concat('a', {w})"), wrong.map(lambda w: f"(1 if agea > 1 else {w})"))


@pytest.fixture(scope="module")
def src() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    con.execute("CREATE TABLE src (agea DOUBLE, gndr DOUBLE, cntry VARCHAR, region VARCHAR)")
    con.executemany("INSERT INTO src VALUES (?, ?, ?, ?)", ROWS)
    return con


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["number", "string", "boolean"]).flatmap(lambda t: _typed(t, 3)))
def test_a_well_typed_expression_compiles_and_runs_in_duckdb(src: duckdb.DuckDBPyConnection, text: str) -> None:
    compiled = compile_expr(text, _ctx())
    src.execute(f"SELECT {compiled.value}, {compiled.reason} FROM src").fetchall()


@settings(max_examples=150, deadline=None)
@given(_ill_typed(2))
def test_an_ill_typed_expression_is_refused_by_the_compiler(text: str) -> None:
    with pytest.raises(ExprError, match=r"needs|cannot (compare|add)"):
        compile_expr(text, _ctx())
