"""Codebooks of a built database describe what was built: loaded counts, parameters, indicators, synthetic data."""

from __future__ import annotations

import html
import re
import shutil
from pathlib import Path

import duckdb
import pytest

from harmonise import connect
from harmonise.outdir import MANIFEST
from harmonise.reports.codebook_build import SYNTHETIC_BANNER
from harmonise.reports.text import md_text, xml_text
from harmonise.spec.project import load_project
from tests.conftest import ROOT, run


def query(db: Path, sql: str) -> list[tuple[object, ...]]:
    con = connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def text_of(page: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


def test_readme_says_which_database_not_no_data(fr_codebook: Path, fr_db: Path) -> None:
    readme = (fr_codebook / "README.md").read_text()
    total = query(fr_db, "SELECT count(*) FROM respondents")[0][0]
    assert "from the declarations alone (no data)" not in readme
    assert f"the database {fr_db.name} ({total:,} respondents in 1 survey-wave(s), built " in readme
    assert "from the declarations alone (no data)" in (ROOT / "codebooks" / "README.md").read_text()


def test_survey_pages_count_what_was_loaded(fr_codebook: Path, fr_db: Path) -> None:
    page = (fr_codebook / "html" / "surveys" / "ess-8.html").read_text()
    (n,) = query(fr_db, "SELECT count(*) FROM respondents WHERE survey = 'ess' AND wave = '8'")[0]
    assert f"<p>{n:,} respondents from 1 file(s); the counts and frequencies on these pages describe them" in page
    for code, name, count in query(fr_db, "SELECT r.country, c.name, count(*) FROM respondents r JOIN countries c "
                                          "ON c.code = r.country GROUP BY ALL"):
        assert f'<tr><td><code>{code}</code></td><td>{name}</td><td class="num">{count:,}</td></tr>' in page
    declared = load_project(ROOT)
    assert "<dt>respondents in the distributed release</dt>" in page  # the declared figure, named as such
    others = [f"{s}-{w.wave}" for s, cw in declared.crosswalks.items() for w in cw.waves if (s, w.wave) != ("ess", "8")]
    for key in others:
        assert "is not in fr.duckdb" in (fr_codebook / "html" / "surveys" / f"{key}.html").read_text(), key
    index = (fr_codebook / "markdown" / "README.md").read_text()
    assert "| respondents loaded |" in index and f"| {n:,} |" in index


def test_parameters_and_labelled_frequency_columns(fr_codebook: Path) -> None:
    schema = load_project(ROOT).schema
    value = schema.params["child_arrival_age"]
    page = (fr_codebook / "html" / "variables" / "migrant_generation.html").read_text()
    assert f"<dt>parameter</dt><dd><code>child_arrival_age</code> = {value:g}" in page
    assert "<th>n (unweighted)</th><th>% weighted (<code>weight</code>)</th>" in page
    assert "Bars: unweighted shares of all " in page
    index = (fr_codebook / "html" / "index.html").read_text()
    for name, v in schema.params.items():
        assert f'<tr><td><code>{name}</code></td><td class="num">{v:g}</td>' in index
    md = (fr_codebook / "markdown" / "migrant_generation.md").read_text()
    assert f"- parameter: `child_arrival_age` = {value:g}" in md
    assert "| value | label | n (unweighted) | % weighted (`weight`) |" in md


def test_one_page_per_indicator(fr_codebook: Path, fr_db: Path) -> None:
    stored = query(fr_db, "SELECT name, label, age_low, age_high, outcome, population FROM "
                          "indicator_definitions ORDER BY position")
    assert stored
    assert sorted(p.stem for p in (fr_codebook / "html" / "indicators").glob("*.html")) == sorted(r[0] for r in stored)
    (rule,) = query(fr_db, "SELECT DISTINCT rule FROM indicators")[0]
    for name, label, low, high, outcome, population in stored:
        page = text_of((fr_codebook / "html" / "indicators" / f"{name}.html").read_text())
        assert f"respondents aged {low} to {high}" in page
        assert f"outcome {outcome}" in page
        assert "weight weight (" in page and "the default for every indicator" in page
        assert f"Rule stored with this database's indicators: {rule}" in page
        md = (fr_codebook / "markdown" / "indicators" / f"{name}.md").read_text()
        assert md.startswith(f"# {md_text(label)} (`{name}`)\n")
        if population:
            assert f"for whom `{population}` holds" in md


@pytest.mark.slow
def test_synthetic_data_are_said_on_every_page(fr_db: Path, fr_codebook: Path, tmp_path: Path) -> None:
    """A demo database carries ('synthetic', 'true') in build_info: every page and DDI file says so."""
    db = tmp_path / "synthetic.duckdb"
    shutil.copy(fr_db, db)
    con = duckdb.connect(str(db))
    con.execute("INSERT INTO build_info VALUES ('synthetic', 'true')")
    con.close()
    out = tmp_path / "cb"
    code, _, err = run("codebook", "--out", str(out), "--db", str(db))
    assert code == 0, err
    files = [p for p in out.rglob("*") if p.is_file() and p.name != MANIFEST]
    assert files
    for path in files:
        text = path.read_text()
        expected = {".html": SYNTHETIC_BANNER, ".md": md_text(SYNTHETIC_BANNER), ".xml": xml_text(SYNTHETIC_BANNER)}
        assert expected[path.suffix] in text, path
    assert not any("SYNTHETIC DATA" in p.read_text() for p in fr_codebook.rglob("*") if p.is_file())
