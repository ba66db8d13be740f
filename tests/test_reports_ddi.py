"""DDI-Codebook 2.5: every generated file validates against the official schema, whatever the labels hold."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from harmonise.reports.ddi import xml_id
from harmonise.reports.text import md_code, md_text, xml_text
from tests.conftest import ROOT, edit, run

XSD = ROOT.parent / "shared" / "reference" / "ddi-codebook-2.5" / "codebook.xsd"
NS = {"d": "ddi:codebook:2_5"}
HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def xsd() -> etree.XMLSchema:
    if not XSD.is_file():
        pytest.fail(f"the official DDI-Codebook 2.5 schema is required at {XSD} (../shared beside the repository)")
    return etree.XMLSchema(etree.parse(str(XSD)))


def codebook(out: Path, *args: str, project: Path | None = None) -> Path:
    code, _, err = run("codebook", "--out", str(out), *args, project=project)
    assert code == 0, err
    return out


def assert_valid(xsd: etree.XMLSchema, folder: Path, expected: int) -> None:
    files = sorted((folder / "ddi").glob("*.xml"))
    assert len(files) == expected
    for path in files:
        doc = etree.parse(str(path))
        errors = [] if xsd.validate(doc) else [f"{path.name}:{e.line}: {e.message}" for e in xsd.error_log]
        assert errors == [], errors[:5]


def wave_count(project: Path = ROOT) -> int:
    from harmonise.spec.project import load_project

    return sum(len(cw.waves) for cw in load_project(project).crosswalks.values())


def test_ddi_from_the_declarations_validates(xsd: etree.XMLSchema, declared_codebook: tuple[Path, str]) -> None:
    assert_valid(xsd, declared_codebook[0], wave_count() + 1)


def test_ddi_from_the_demo_and_ess8_builds_validates(xsd: etree.XMLSchema, demo_codebook: Path,
                                                     fr_codebook: Path) -> None:
    assert_valid(xsd, demo_codebook, wave_count() + 1)
    assert_valid(xsd, fr_codebook, wave_count() + 1)


def test_one_coding_instruction_per_survey_wave_and_a_derivation_only_for_derived_targets(
        declared_codebook: tuple[Path, str]) -> None:
    declared = declared_codebook[0]
    from harmonise.spec.project import load_project

    schema, waves = load_project(ROOT).schema, wave_count()
    root = etree.parse(str(declared / "ddi" / "harmonised.xml")).getroot()
    for var in root.iterfind("d:dataDscr/d:var", NS):
        target = schema.variable(var.get("name"))
        rules = var.findall("d:codInstr", NS)
        assert [r.get("ID") for r in rules] == [f"R_{target.name}_{r.text.split(':')[0]}" for r in rules]
        assert len(rules) == waves
        drv = var.find("d:derivation", NS)
        if target.derive is None:
            assert drv is None
        else:
            assert drv.findtext("d:drvcmd", namespaces=NS) == " ".join(target.derive.expr.split())
    sex = root.find("d:dataDscr/d:var[@name='sex']", NS)
    assert sex.findtext("d:codInstr[@ID='R_sex_ess-8']", namespaces=NS) == (
        "ess-8: gndr recoded (2 codes). codes 1 → male; 2 → female. missing 9 → no_answer. "
        "system-missing → not_available")
    generation = root.find("d:dataDscr/d:var[@name='migrant_generation']/d:derivation", NS)
    assert "V_born_in_country" in generation.get("var").split()


def test_control_characters_and_markup_in_labels(xsd: etree.XMLSchema, project: Path, tmp_path: Path) -> None:
    """A declared label holding a control character and HTML: the DDI stays valid XML and shows the character
    as an escape; Markdown and HTML show the markup as text."""
    book = project / "surveys" / "ess" / "codebook_8.yaml"
    edit(book, "- name: gndr\n  label: Gender\n", f'- name: gndr\n  label: "Gender\\x01\\x0b {HOSTILE}"\n')
    edit(book, "    1: Male\n    2: Female\n    9: No answer\n",
         f'    1: "Male {HOSTILE}"\n    2: "Fe\\x02male"\n    9: No answer\n')
    out = codebook(tmp_path / "cb", project=project)
    assert_valid(xsd, out, wave_count(project) + 1)
    wave = etree.parse(str(out / "ddi" / "ess-8.xml")).getroot()
    gndr = wave.find("d:dataDscr/d:var[@name='gndr']", NS)
    assert gndr.findtext("d:labl", namespaces=NS) == f"Gender\\x01 {HOSTILE}"  # \\x0b is whitespace
    assert [c.findtext("d:labl", namespaces=NS) for c in gndr.findall("d:catgry", NS)] == [
        f"Male {HOSTILE}", "Fe\\x02male", "No answer"]
    for path in out.rglob("*.md"):
        assert "<img" not in path.read_text(), path
    for path in out.rglob("*.html"):
        assert "<img" not in path.read_text(), path
    md = (out / "markdown" / "sex.md").read_text()
    assert "- source `gndr`: Gender\\\\x01 &lt;img src=x onerror=alert(1)&gt;" in md
    assert "| `1` | Male &lt;img src=x onerror=alert(1)&gt; | `male` | Male |" in md


@pytest.mark.parametrize(("text", "xml", "md", "code"), [
    ("a\x00b", "a\\x00b", "a\\\\x00b", "a\\x00b"),
    ("line\nbreak\ttab", "line break tab", "line break tab", "line break tab"),
    ("cp1252 quote \x92", "cp1252 quote \\x92", "cp1252 quote \\\\x92", "cp1252 quote \\x92"),
    ("x\ufffey", "x\\ufffey", "x\\\\ufffey", "x\\ufffey"),
    ("a|b [l](u) *e* `c` & <b>", "a|b [l](u) *e* `c` & <b>", "a\\|b \\[l\\](u) \\*e\\* \\`c\\` &amp; &lt;b&gt;",
     "a|b [l](u) *e* 'c' & <b>"),
])
def test_text_for_each_format(text: str, xml: str, md: str, code: str) -> None:
    assert (xml_text(text), md_text(text), md_code(text)) == (xml, md, code)


def test_ids_are_ncnames_and_distinct() -> None:
    names = ["q1", "q1$", "q1@", "q#1", "v.2", "a-b"]
    ids = [xml_id("V_", n) for n in names]
    assert ids == ["V_q1", "V_q1_x24_", "V_q1_x40_", "V_q_x23_1", "V_v.2", "V_a-b"]
    assert len(set(ids)) == len(ids)
