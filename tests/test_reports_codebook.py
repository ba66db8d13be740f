"""Codebooks: HTML, Markdown and DDI from the declarations; frequencies from a database; freshness."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harmonise.reports.codebook import write_files
from harmonise.reports.codebook_stats import BINS, FreqRow, database_stats, suppress
from harmonise.spec.coverage import coverage
from harmonise.spec.project import load_project
from tests.conftest import ROOT, declared_waves, edit, line_of, run

NS = {"d": "ddi:codebook:2_5"}


@pytest.fixture(scope="module")
def loaded():  # type: ignore[no-untyped-def]
    return load_project(ROOT)


@pytest.fixture(scope="module")
def cb_out(declared_codebook: tuple[Path, str], loaded) -> Path:  # type: ignore[no-untyped-def]
    from harmonise.reports.codebook_model import build_codebook

    cb = build_codebook(loaded)
    out, stdout = declared_codebook
    html = len(cb.targets) + len(cb.waves) + len(cb.tables) + len(cb.indicators) + 2  # + index, coverage
    markdown = len(cb.targets) + len(cb.indicators) + 1  # + README
    assert stdout.startswith(f"wrote {out} from the declarations: {html} html, {markdown} markdown, "
                             f"{len(cb.waves) + 1} ddi file(s), ")
    return out


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_committed_codebooks_are_up_to_date(cb_out: Path) -> None:
    fresh, committed = files_of(cb_out), files_of(ROOT / "codebooks")
    stale = sorted(k for k in fresh.keys() | committed.keys() if fresh.get(k) != committed.get(k))
    assert not stale, (f"codebooks/ is out of date with the declarations ({len(stale)} file(s) differ, e.g. "
                       f"{stale[:3]}); refresh it with: harmonise codebook --out codebooks")


def test_every_target_and_wave_has_pages(cb_out: Path, loaded) -> None:  # type: ignore[no-untyped-def]
    names = loaded.schema.names
    waves = sorted(f"{s}-{w.wave}" for s, cw in loaded.crosswalks.items() for w in cw.waves)
    assert sorted(p.stem for p in (cb_out / "html" / "variables").glob("*.html")) == sorted(names)
    assert sorted(p.stem for p in (cb_out / "markdown").glob("*.md")) == sorted(names + ["README"])
    assert sorted(p.stem for p in (cb_out / "html" / "surveys").glob("*.html")) == waves
    assert sorted(p.stem for p in (cb_out / "ddi").glob("*.xml")) == sorted(waves + ["harmonised"])
    index = (cb_out / "html" / "index.html").read_text()
    assert re.findall(r'<li data-search="[^"]*"><a href="variables/([a-z0-9_]+)\.html">', index) == names
    md_index = (cb_out / "markdown" / "README.md").read_text()
    links = re.findall(r"\]\(([a-z0-9_]+\.md)\)", md_index)
    assert sorted(set(links)) == sorted(f"{n}.md" for n in names)


def test_variable_page_shows_rule_codes_and_labels(cb_out: Path) -> None:
    html = (cb_out / "html" / "variables" / "sex.html").read_text()
    assert "<h1><code>sex</code> — Sex</h1>" in html
    section = html[html.index('<section class="entry" id="ess-8">'):]
    section = section[:section.index("</section>")]
    assert '<a href="../surveys/ess-8.html">ESS 8</a> <span class="flag q-exact">exact</span>' in section
    assert "<code>gndr</code> Gender" in section
    assert ("<tr><td><code>1</code></td><td>Male</td><td><code>male</code></td><td>Male</td></tr>\n"
            "<tr><td><code>2</code></td><td>Female</td><td><code>female</code></td><td>Female</td></tr>") in section
    assert "<tr><td><code>gndr</code></td><td><code>9</code></td><td>No answer</td><td>no_answer</td></tr>" in section
    for reason in ("not_asked", "refused", "dont_know", "other_missing"):
        assert f"<tr><td><code>{reason}</code></td>" in html
    md = (cb_out / "markdown" / "sex.md").read_text()
    assert "| `1` | Male | `male` | Male |\n| `2` | Female | `female` | Female |" in md
    assert "### ESS 8 — exact" in md


def test_coverage_matrix_links_every_cell_to_its_rule(cb_out: Path, loaded) -> None:  # type: ignore[no-untyped-def]
    cells = coverage(loaded)
    html = (cb_out / "html" / "coverage.html").read_text()
    links = re.findall(r'<td class="q-([a-z_]+)"><a href="variables/([a-z0-9_]+)\.html#([A-Za-z0-9-]+)"', html)
    assert len(links) == len(cells) == len(loaded.schema.names) * len(declared_waves())
    kinds = {"not_asked": "not_asked", "automatic": "automatic", "derived": "derived"}
    expected = {(c.target, f"{c.survey}-{c.wave}"): kinds.get(c.kind) or c.quality for c in cells}
    assert {(t, k): q for q, t, k in links} == expected
    anchors: dict[str, set[str]] = {}
    for _, target, key in links:
        if target not in anchors:
            page = (cb_out / "html" / "variables" / f"{target}.html").read_text()
            anchors[target] = set(re.findall(r'<section class="entry" id="([^"]+)">', page))
        assert key in anchors[target]


def test_survey_page_shows_descriptor_and_targets(cb_out: Path, loaded) -> None:  # type: ignore[no-untyped-def]
    html = (cb_out / "html" / "surveys" / "ess-8.html").read_text()
    assert "<dt>producer</dt><dd>ESS ERIC (European Social Survey European Research Infrastructure Consortium)</dd>" in html
    assert "<dt>sampling</dt><dd>probability; units: persons, households, addresses." in html
    assert ("<p class=\"citation\">European Social Survey European Research Infrastructure (ESS ERIC) (2018). "
            "ESS8 - integrated file, edition 2.1 [Data set]. Sikt - Norwegian Agency for Shared Services in Education "
            "and Research. https://doi.org/10.21338/NSD-ESS8-2016</p>") in html
    fed = re.findall(r'<tr><td><a href="../variables/([a-z0-9_]+)\.html#ess-8"><code>', html)
    measured = [c.target for c in coverage(loaded) if (c.survey, c.wave) == ("ess", "8") and c.measured]
    not_asked = [c.target for c in coverage(loaded) if (c.survey, c.wave) == ("ess", "8") and not c.measured]
    assert fed == measured + not_asked


def test_ddi_is_well_formed_with_every_variable_and_category(cb_out: Path, loaded) -> None:  # type: ignore[no-untyped-def]
    for path in sorted((cb_out / "ddi").glob("*.xml")):
        ET.parse(path)  # raises on malformed XML
    root = ET.parse(cb_out / "ddi" / "harmonised.xml").getroot()
    assert root.tag == "{ddi:codebook:2_5}codeBook" and root.get("version") == "2.5"
    for required in ("d:docDscr/d:citation/d:titlStmt/d:titl", "d:stdyDscr/d:citation/d:titlStmt/d:titl",
                     "d:stdyDscr/d:stdyInfo/d:abstract", "d:fileDscr/d:fileTxt/d:fileName", "d:dataDscr/d:var"):
        assert root.find(required, NS) is not None, required
    assert [c.tag.split("}")[1] for c in root] == ["docDscr", "stdyDscr", "fileDscr", "dataDscr"]
    schema = loaded.schema
    variables = root.findall("d:dataDscr/d:var", NS)
    assert [v.get("name") for v in variables] == schema.names
    reasons = list(schema.missing_reasons)
    for el in variables:
        var = schema.variable(el.get("name"))
        assert el.findtext("d:labl", namespaces=NS) == var.label
        cats = [(c.findtext("d:catValu", namespaces=NS), c.findtext("d:labl", namespaces=NS), c.get("missing"))
                for c in el.findall("d:catgry", NS)]
        codes = list((var.codes or {}).items()) if var.type == "category" else (
            [("true", "Yes"), ("false", "No")] if var.type == "boolean" else [])
        missing = [(r, schema.missing_reasons[r].label, "Y") for r in reasons] if var.has_missing_column else []
        assert cats == [(c, label, None) for c, label in codes] + missing
        assert len(el.findall("d:codInstr", NS)) == len(declared_waves())
        children = [c.tag.split("}")[1] for c in el]
        assert children.index("labl") < children.index("txt") < children.index("codInstr") < children.index("notes")


def test_wave_ddi_lists_source_variables_with_missing_categories(cb_out: Path) -> None:
    root = ET.parse(cb_out / "ddi" / "ess-8.xml").getroot()
    assert root.findtext("d:stdyDscr/d:citation/d:titlStmt/d:IDNo", namespaces=NS) == "10.21338/NSD-ESS8-2016"
    assert root.findtext("d:fileDscr/d:fileTxt/d:fileName", namespaces=NS) == "ESS8e02_1.sav"
    gndr = root.find("d:dataDscr/d:var[@name='gndr']", NS)
    assert gndr.findtext("d:labl", namespaces=NS) == "Gender"
    cats = [(c.findtext("d:catValu", namespaces=NS), c.get("missing")) for c in gndr.findall("d:catgry", NS)]
    assert cats == [("1", None), ("2", None), ("9", "Y")]
    assert gndr.findtext("d:notes", namespaces=NS) == "Feeds sex (map, exact). Declared missing: values 9."


def test_stale_generated_files_are_removed(tmp_path: Path) -> None:
    write_files({"html/index.html": "<p>old</p>\n", "html/variables/gone.html": "old"}, tmp_path)
    (tmp_path / "html" / "keep.png").write_bytes(b"not ours")
    (tmp_path / "html" / "variables" / "mine.html").write_text("not ours either")
    removed = write_files({"html/index.html": "<p>new</p>\n", "markdown/README.md": "# x\n"}, tmp_path)
    assert removed == 1
    assert {k: v for k, v in files_of(tmp_path).items() if k != ".harmonise-manifest"} == {
        "html/index.html": b"<p>new</p>\n", "html/keep.png": b"not ours", "markdown/README.md": b"# x\n",
        "html/variables/mine.html": b"not ours either"}


def test_usage_errors(tmp_path: Path) -> None:
    code, _, err = run("codebook", "--out", str(tmp_path / "cb"), "--db", str(tmp_path / "none.duckdb"))
    assert code == 2
    assert err == f"error: {tmp_path / 'none.duckdb'}: no such database; run `harmonise build` first or pass --db\n"
    (tmp_path / "file").write_text("x")
    code, _, err = run("codebook", "--out", str(tmp_path / "file"))
    assert code == 2
    assert "is a file" in err or "exists and is not a folder" in err
    code, _, err = run("codebook", "--out", str(tmp_path / "cb"), "--min-cell", "0")
    assert code == 2 and "--min-cell" in err
    other = tmp_path / "other.duckdb"
    duckdb.connect(str(other)).close()  # a DuckDB file harmonise did not build
    code, out, err = run("codebook", "--out", str(tmp_path / "cb"), "--db", str(other))
    assert (code, out) == (2, "")
    assert err == (f"error: {other}: not a database harmonise built (no respondents table); build one with "
                   "`harmonise build`, or pass the --db that it wrote\n")


def test_broken_declarations_fail_validation_with_their_location(project: Path, tmp_path: Path) -> None:
    cw = project / "mappings" / "ess.yaml"
    edit(cw, '      region_nuts: {expr: "coalesce(nuts3', '      regoin_nuts: {expr: "coalesce(nuts3')
    code, _, err = run("codebook", "--out", str(tmp_path / "cb"), project=project)
    assert code == 1
    line = line_of(cw, "regoin_nuts")
    assert f"error: mappings/ess.yaml:{line} periods.0.overrides.regoin_nuts: override for unknown target 'regoin_nuts'" in err
    assert err.endswith("the crosswalks do not resolve; fix them before generating codebooks: 1 error(s)\n")
    assert not (tmp_path / "cb").exists()
    edit(project / "mappings" / "schema.yaml", "  - name: survey\n", "  - nmae: survey\n")
    code, _, err = run("codebook", "--out", str(tmp_path / "cb"), project=project)
    assert code == 1 and "mappings/schema.yaml:" in err and "did you mean 'name'?" in err


rows_strategy = st.lists(st.tuples(st.integers(0, 200), st.booleans()), min_size=1, max_size=12)


@settings(max_examples=100, deadline=None)
@given(rows_strategy, st.integers(1, 50))
def test_suppression_hides_small_cells_and_protects_a_lone_one(cells: list[tuple[int, bool]], min_cell: int) -> None:
    rows = [FreqRow(str(i), "refused" if miss else None, n, 1.0) for i, (n, miss) in enumerate(cells)]
    suppress(rows, min_cell)
    hidden = [r for r in rows if r.suppressed]
    assert all(r.suppressed for r in rows if r.n < min_cell)
    assert all((r.weighted is None) == r.suppressed for r in rows)
    primary = sum(1 for n, _ in cells if n < min_cell)
    assert len(hidden) == (min(2, len(rows)) if primary == 1 else primary)
    secondary = [r for r in rows if r.secondary]  # shown as hidden, not as small: its count is not small
    assert len(secondary) == (1 if primary == 1 and len(rows) > 1 else 0)
    assert all(r.suppressed and r.n >= min_cell for r in secondary)


def test_a_valid_count_hidden_to_protect_a_small_missing_cell_is_not_shown_elsewhere(tmp_path: Path) -> None:
    """The valid-values row of a numeric target hidden as the second cell (so that one refusal cannot be derived
    from the total) was printed as the summary's valid n, and the histogram's bins added up to it: an audit
    derived 10 hidden cells of the real ESS codebooks that way."""
    db = tmp_path / "h.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE respondents (survey VARCHAR, wave VARCHAR, age DOUBLE, age_missing VARCHAR, "
                "weight DOUBLE)")
    con.executemany("INSERT INTO respondents VALUES ('ess', '8', ?, ?, 1.0)",
                    [[20.0 + i % 60, None] for i in range(99)] + [[None, "refused"]])
    con.execute("INSERT INTO respondents SELECT 'ess', '9', 20 + i % 60, NULL, 1.0 FROM range(100) t(i)")
    con.close()
    schema = load_project(ROOT).schema
    stats = database_stats(db, [schema.variable("age")], min_cell=20)["age"]
    hidden, whole = stats[("ess", "8")], stats[("ess", "9")]
    valid = next(r for r in hidden.rows if r.reason is None)
    assert (valid.suppressed, valid.secondary, hidden.rows[-1].suppressed) == (True, True, True)
    assert hidden.summary is not None and hidden.summary.n_hidden and hidden.histogram == []
    assert hidden.summary.mean is not None  # the statistics of the values stay: they count no one
    assert whole.summary is not None and not whole.summary.n_hidden and sum(r.n for r in whole.histogram) == 100


def test_the_real_ess8_codebook_hides_the_valid_count_that_gives_away_one_missing_age(fr_codebook: Path) -> None:
    """ESS8 FR: 2,070 respondents, one age not available (hidden), 2,069 valid values (hidden as the second cell)."""
    page = (fr_codebook / "markdown" / "age.md").read_text()
    assert "2069" not in page and "2,069" not in page
    html = (fr_codebook / "html" / "variables" / "age.html").read_text()
    assert "2069" not in re.findall(r'data-valid="(\d*)"', html) and 'data-valid=""' in html


# --- with a database ----------------------------------------------------------------------------

def query_json(db: Path, sql: str) -> list[dict[str, object]]:
    code, out, err = run("query", sql, "--db", str(db), "--format", "json")
    assert code == 0, err
    return json.loads(out)


ROW = re.compile(r'<tr class="freq" data-sw="([^"]+)" data-value="([^"]*)" data-reason="([^"]*)" data-n="(\d*)">'
                 r'\n<td>.*?</td>\n<td>.*?</td>\n<td class="num">([^<]*)</td>')


@pytest.mark.parametrize("target", ["sex", "labour_status", "citizen", "country_of_birth", "education_level", "age"])
def test_page_frequencies_equal_query_counts(demo_codebook: Path, small_demo_db: Path, loaded,  # type: ignore[no-untyped-def]
                                             target: str) -> None:
    var = loaded.schema.variable(target)
    value = f"CAST({target} AS VARCHAR)" if var.type not in ("integer", "number") else "NULL"
    expected = {(f"{r['survey']}-{r['wave']}", r["v"] or "", r["m"] or ""): r["n"] for r in query_json(
        small_demo_db, f"SELECT survey, wave, {value} AS v, {target}_missing AS m, count(*) AS n FROM respondents "
                 "GROUP BY ALL")}
    html = (demo_codebook / "html" / "variables" / f"{target}.html").read_text()
    shown = {(sw, v, m): (n, text) for sw, v, m, n, text in ROW.findall(html)}
    assert set(shown) == set(expected)
    compared = 0
    for key, (n, text) in shown.items():
        if n:
            assert int(n) == expected[key] and text == n, key
            compared += 1
        else:  # below 20, or hidden only so that a lone small cell cannot be recovered from the total
            assert text == ("&lt;20" if expected[key] < 20 else "*"), key
    assert compared >= 2
    md = (demo_codebook / "markdown" / f"{target}.md").read_text()
    for (sw, v, m), (n, _) in shown.items():
        if n and v:
            assert f"| `{v}` |" in md and f"| {n} |" in md


def test_numeric_summary_and_disclosure_note(demo_codebook: Path, small_demo_db: Path) -> None:
    rows = query_json(small_demo_db, "SELECT survey, wave, count(age) AS n FROM respondents GROUP BY ALL ORDER BY 1, 2")
    html = (demo_codebook / "html" / "variables" / "age.html").read_text()
    stats = database_stats(small_demo_db, [load_project(ROOT).schema.variable("age")])["age"]
    hidden = {k for k, ws in stats.items() if ws.summary is not None and ws.summary.n_hidden}
    for r in rows:  # a valid count hidden as the second cell (a missing cell under 20) is not shown here either
        shown = "" if (r["survey"], r["wave"]) in hidden else r["n"]
        assert f'<tr data-sw="{r["survey"]}-{r["wave"]}" data-valid="{shown}">' in html
    assert "a cell counted on fewer than 20 unweighted respondents is shown as &lt;20" in html
    assert html.count('<svg class="chart"') == len(rows)  # one chart per survey-wave (a histogram where none is hidden)


def test_histogram_bins_cover_every_valid_value(small_demo_db: Path, loaded) -> None:  # type: ignore[no-untyped-def]
    stats = database_stats(small_demo_db, [loaded.schema.variable("age"), loaded.schema.variable("sex")])
    valid = {(r["survey"], r["wave"]): r["n"] for r in query_json(
        small_demo_db, "SELECT survey, wave, count(age) AS n FROM respondents GROUP BY ALL")}
    assert set(stats["age"]) == set(valid)
    for key, ws in stats["age"].items():
        assert valid[key] == ws.summary.n
        if ws.summary.n_hidden:  # bins would add up to a valid count hidden to protect a small missing cell
            assert ws.histogram == []
            continue
        assert sum(b.n for b in ws.histogram) == valid[key]
        assert 2 <= len(ws.histogram) <= BINS
        assert ws.histogram[0].value.startswith("≤ ") and ws.histogram[-1].value.startswith("≥ ")
    assert any(not ws.summary.n_hidden for ws in stats["age"].values())  # the bins are checked somewhere
    assert all(ws.histogram == [] and ws.summary is None for ws in stats["sex"].values())


def test_a_rule_whose_variable_the_declared_codebook_lacks_is_shown_absent(project: Path) -> None:
    """A file holding a variable its declared codebook lacks still builds (a note); the codebook of that project
    stopped with 'internal error: UndefinedError: ... no attribute 'other'' (the cell had no flag letter)."""
    edit(project / "mappings" / "ties.yaml", "  sex:\n    source: sex\n", "  sex:\n    source: sexx\n")
    code, _, err = run("codebook", "--out", str(project / "cb"), project=project)
    assert code == 0, err
    page = (project / "cb" / "markdown" / "sex.md").read_text()
    assert "### TIES 2007 — absent\n\n- rule: absent: `not available in this file (it lacks sexx)`" in page


def test_markdown_escapes_survey_acronyms_parameter_names_and_table_names(project: Path) -> None:
    """A descriptor's acronym titled each wave's section of the Markdown pages as it was (HTML and links
    rendered), and a parameter's name closed its code span with a backtick."""
    edit(project / "surveys" / "ties" / "survey.yaml", "acronym: TIES\n",
         "acronym: \"TIES <img src=x onerror=alert(1)> [a](javascript:alert(1))\"\n")
    edit(project / "mappings" / "schema.yaml", "  child_arrival_age: 15\n",
         "  \"odd`<img src=x onerror=alert(2)>\": 1\n  child_arrival_age: 15\n")
    code, _, err = run("codebook", "--out", str(project / "cb"), project=project)
    assert code == 0, err
    page = (project / "cb" / "markdown" / "sex.md").read_text()
    assert "### TIES &lt;img src=x onerror=alert(1)&gt; \\[a\\](javascript:alert(1)) 2007 — exact" in page
    index = (project / "cb" / "markdown" / "README.md").read_text()
    assert "| `odd'<img src=x onerror=alert(2)>` | 1 |" in index
    pages = [p.read_text() for p in (project / "cb").rglob("*.md")]
    assert not any("<img src=x onerror=alert(1)>" in text or re.search(r"(?<!\\)\]\(javascript:", text) for text in pages)


def test_frequency_rows_of_a_country_name_its_country(demo_codebook: Path, small_demo_db: Path) -> None:
    """A country's, language's or city's row in a page's frequency table had an empty label (`| `AF` |  | <20 |`):
    the labels came from the codes a page lists, which a reference table's targets leave out (an audit of the
    researcher's side)."""
    assert query_json(small_demo_db, "SELECT count(*) AS n FROM respondents WHERE country_of_birth = 'FR'")[0]["n"]
    md = (demo_codebook / "markdown" / "country_of_birth.md").read_text()
    assert "| `FR` | France |" in md and "| `FR` |  |" not in md
    html = (demo_codebook / "html" / "variables" / "country_of_birth.html").read_text()
    assert '<td>France</td>' in html
    cities = (demo_codebook / "markdown" / "city.md").read_text()
    assert "| `NL002C` | Amsterdam |" in cities
