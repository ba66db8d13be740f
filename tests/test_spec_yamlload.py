"""The line-aware loader (harmonise/spec/yamlload.py): numbers YAML would read as other numbers are refused,
located and explained; plain decimal numbers load as before."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from harmonise.spec import parsecache
from harmonise.spec.descriptor import load_descriptor
from harmonise.spec.yamlload import load_yaml_text

ROOT = Path(__file__).resolve().parents[1]


def _issues(text: str) -> list[str]:
    return [f"{i.code} {i.format()}" for i in load_yaml_text(text, "x.yaml").issues]


@pytest.mark.parametrize(("written", "message"), [
    ("040", ("'040' is a zero-padded number, read by YAML as the octal number 32 — write 40 for the number, or quote "
            "it for text: \"040\"")),
    ("-040", ("'-040' is a zero-padded number, read by YAML as the octal number -32 — write -40 for the number, or "
             "quote it for text: \"-040\"")),
    ("00", ("'00' is a zero-padded number, read by YAML as the octal number 0 — write 0 for the number, or quote it "
           "for text: \"00\"")),
    ("008", ("'008' is a zero-padded number, read by YAML 1.1 as text but by YAML 1.2 (and editors) as the number 8 "
            "— write 8 for the number, or quote it for text: \"008\"")),
    ("0x2", ("'0x2' is read by YAML as the hexadecimal number 2 — write 2 for the number, or quote it for text: "
            "\"0x2\"")),
    ("+0x1F", ("'+0x1F' is read by YAML as the hexadecimal number 31 — write 31 for the number, or quote it for "
              "text: \"+0x1F\"")),
    ("0b1", "'0b1' is read by YAML as the binary number 1 — write 1 for the number, or quote it for text: \"0b1\""),
    ("1_0", ("'1_0' is read by YAML as the number 10 (the underscores dropped) — write 10 for the number, or quote "
            "it for text: \"1_0\"")),
    ("1_000.5", ("'1_000.5' is read by YAML as the number 1000.5 (the underscores dropped) — write 1000.5 for the "
                "number, or quote it for text: \"1_000.5\"")),
    ("1:00", ("'1:00' is read by YAML as the base-60 (sexagesimal) number 60 — write 60 for the number, or quote it "
             "for text: \"1:00\"")),
    ("1:30.5", ("'1:30.5' is read by YAML as the base-60 (sexagesimal) number 90.5 — write 90.5 for the number, or "
               "quote it for text: \"1:30.5\"")),
    ("!!int 040", ("'040' is a zero-padded number, read by YAML as the octal number 32 — write 40 for the number, or "
                  "quote it for text: \"040\"")),
])
def test_a_number_yaml_reads_as_another_is_an_error_at_its_line_and_path(written: str, message: str) -> None:
    loaded = load_yaml_text(f"survey: ties\ntargets:\n  country:\n    map: {{1: AT}}\n    range: [0, {written}]\n",
                            "mappings/ties.yaml")
    assert [i.format() for i in loaded.issues] == [f"mappings/ties.yaml:5 targets.country.range.1: {message}"]
    assert [(i.code, i.severity) for i in loaded.issues] == [("yaml-number-form", "error")]
    assert loaded.data["targets"]["country"]["range"] == [0, None]  # refused: never the misread number


def test_zero_padded_map_keys_are_each_reported_and_left_out() -> None:
    """ISO numeric country codes are commonly written zero-padded: {040: AT} read as {32: AT} without a word."""
    loaded = load_yaml_text("map: {040: AT, 070: BA, 8: BE, 100: BG}\n", "x.yaml")
    assert [(i.code, i.line, i.path) for i in loaded.issues] == [("yaml-number-form", 1, "map.040"),
                                                                 ("yaml-number-form", 1, "map.070")]
    assert loaded.issues[1].hint == 'write 70 for the number, or quote it for text: "070"'
    assert loaded.data == {"map": {8: "BE", 100: "BG"}}


@pytest.mark.parametrize(("written", "value"), [
    ("40", 40), ("-3", -3), ("+5", 5), ("0", 0), ("-0", 0), ("1.5", 1.5), ("0.25", 0.25), (".5", 0.5), ("0.", 0.0),
    ("07.5", 7.5), ("1.5e+3", 1500.0), ('"040"', "040"), ("'0x2'", "0x2"), ('"1:00"', "1:00"), ("!!str 008", "008"),
    ("0o17", "0o17"), ("1e5", "1e5"), ("AT", "AT"), ("00:30", "00:30"),
])
def test_plain_decimal_numbers_and_quoted_or_other_text_load_as_before(written: str, value: object) -> None:
    loaded = load_yaml_text(f"a: {written}\n{written}: b\n", "x.yaml")
    assert loaded.issues == []
    assert loaded.data == {"a": value, value: "b"}
    assert type(loaded.data["a"]) is type(value)


@settings(max_examples=200, deadline=None, database=None)
@given(st.integers(0, 10**9), st.integers(1, 4), st.sampled_from(["", "-", "+"]))
def test_any_zero_padded_integer_is_refused_with_its_decimal_reading(n: int, zeros: int, sign: str) -> None:
    written = f"{sign}{'0' * zeros}{n}"
    meant = int(written, 10)
    for doc in (f"a: {written}\n", f"{{{written}: a}}\n"):
        issues = load_yaml_text(doc, "x.yaml").issues
        assert [(i.code, i.hint) for i in issues] == [
            ("yaml-number-form", f'write {meant} for the number, or quote it for text: "{written}"')], doc
    assert load_yaml_text(f'a: "{written}"\n', "x.yaml").data == {"a": written}


@settings(max_examples=200, deadline=None, database=None)
@given(st.integers(-10**9, 10**9), st.sampled_from(["hex", "bin", "underscore", "base60"]), st.data())
def test_any_non_decimal_integer_form_is_refused_naming_the_number_yaml_reads(n: int, form: str, data: st.DataObject
                                                                              ) -> None:
    sign, body = ("-" if n < 0 else ""), abs(n)
    if form == "hex":
        written, value = f"{sign}0x{body:x}", n
    elif form == "bin":
        written, value = f"{sign}0b{body:b}", n
    elif form == "underscore":
        digits = str(body + 10)  # two digits at least, no leading zero
        cut = data.draw(st.integers(1, len(digits) - 1))
        written, value = f"{sign}{digits[:cut]}_{digits[cut:]}", int(f"{sign}{digits}")
    else:
        hours, minutes = body % 1000 + 1, body % 60
        written, value = f"{sign}{hours}:{minutes:02d}", int(f"{sign}{hours * 60 + minutes}")
    issues = load_yaml_text(f"a: {written}\n", "x.yaml").issues
    assert [(i.code, i.line, i.path, i.hint) for i in issues] == [
        ("yaml-number-form", 1, "a", f'write {value} for the number, or quote it for text: "{written}"')]


@settings(max_examples=200, deadline=None, database=None)
@given(st.one_of(st.integers(-10**12, 10**12), st.floats(allow_nan=False, allow_infinity=False)))
def test_decimal_numbers_as_python_writes_them_load_unchanged(x: float) -> None:
    written = repr(x)
    if "e" in written and "." not in written.split("e")[0]:  # 1e+16: YAML 1.1 reads no float without a dot
        written = written.replace("e", ".0e")
    assert load_yaml_text(f"a: {written}\n", "x.yaml").data == {"a": x}


def test_nesting_past_libyaml_limit_is_too_large_not_a_syntax_error() -> None:
    assert _issues("a: " + "[" * 2000 + "]" * 2000) == [
        ("yaml-too-large x.yaml:1: document nests too deeply; refusing to parse — declarations nest a few levels "
        "deep: check the brackets and indentation")]
    block = "a:\n" + "".join(" " * (i + 1) + "- \n" for i in range(1200))
    assert [i.split(":")[0] for i in _issues(block)] == ["yaml-too-large x.yaml"]


def test_every_shipped_declaration_loads_without_issues() -> None:
    """No shipped crosswalk, schema, table, descriptor, codebook or other declaration writes a number in a form
    the loader refuses (or anything else it refuses)."""
    files = sorted((ROOT / "mappings").rglob("*.yaml")) + sorted((ROOT / "surveys").rglob("*.yaml"))
    assert len(files) > 20
    found = {str(p.relative_to(ROOT)): [i.format() for i in load_yaml_text(p.read_text(encoding="utf-8"), p.name).issues]
             for p in files}
    assert {k: v for k, v in found.items() if v} == {}


def test_a_descriptor_with_a_number_yaml_misreads_is_a_validation_error(tmp_path: Path) -> None:
    """The descriptor loader read what the line-aware loader refused with yaml.safe_load (040 became 32)."""
    text = (ROOT / "surveys" / "ties" / "survey.yaml").read_text(encoding="utf-8")
    assert "    min: 18\n" in text
    path = tmp_path / "survey.yaml"
    path.write_text(text.replace("    min: 18\n", "    min: 018\n"), encoding="utf-8")
    with pytest.raises(ValidationError) as raised:
        load_descriptor(path)
    line = text.splitlines().index("    min: 18") + 1
    assert [(e["loc"], e["msg"]) for e in raised.value.errors()] == [
        (("target_population", "age", "min"),
         (f"line {line}: '018' is a zero-padded number, read by YAML 1.1 as text but by YAML 1.2 (and editors) as the "
         "number 18 — write 18 for the number, or quote it for text: \"018\""))]


def test_the_parse_cache_key_names_the_loader_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    """An entry parsed before the loader refused number forms is not taken for a clean parse."""
    before = parsecache.key(b"a: 040\n", "x.yaml")
    monkeypatch.setattr(parsecache, "LOADER", parsecache.LOADER + 1)
    assert parsecache.key(b"a: 040\n", "x.yaml") != before


def test_a_tab_that_indents_a_line_is_named_as_the_fault() -> None:
    """A tab in the indentation got the generic hint 'check indentation, quotes and colons', which a tab, being
    invisible in most editors, does not reveal."""
    loaded = load_yaml_text("targets:\n  sex:\n\tsource: gndr\n", "x.yaml")
    assert [(i.line, i.format()) for i in loaded.issues] == [(3, (
        "x.yaml:3: YAML syntax error: found character that cannot start any token (while scanning for the next token)"
        " — a tab character indents this line, and YAML indents with spaces only: replace it with spaces"))]
    loaded = load_yaml_text("targets:\n  sex: [gndr\n", "x.yaml")
    assert loaded.issues[0].hint == "check indentation, quotes and colons on this line and the one before"
