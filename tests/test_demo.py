"""Issue 23: the demo's comparisons are publishable, its database says it is synthetic, and
`harmonise build --demo` ends with a comparison table and the commands to run next."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest
from conftest import ROOT, run, run_drawing
from scipy.stats import t  # type: ignore[import-untyped]

from harmonise import connect, indicators
from harmonise.demo import BREAKDOWN, INDICATOR, comparison
from harmonise.spec.project import load_project


def _stored(db: Path, sql: str, params: list[object] | None = None) -> list[tuple[object, ...]]:
    con = connect(db)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def _sampled_cities() -> set[str]:
    """Cities that the declared waves of the city surveys sample (mappings/cities.yaml)."""
    project = load_project(ROOT)
    waves = {(cw.survey, w.wave) for cw in project.crosswalks.values() for w in cw.waves}
    assert project.tables.cities is not None
    return {str(row["code"]) for row in project.tables.cities.rows
            for s in row.get("sampled_by") or [] if (s.get("survey"), str(s.get("wave"))) in waves}


def test_demo_database_is_marked_synthetic(demo_db: Path, fr_db: Path) -> None:
    assert _stored(demo_db, "SELECT value FROM build_info WHERE key = 'synthetic'") == [("true",)]
    assert _stored(fr_db, "SELECT value FROM build_info WHERE key = 'synthetic'") == []


def test_most_employment_cells_by_birthplace_are_published(demo_db: Path) -> None:
    # the stored default table (survey x wave x country) and the API's default grouping
    stored = _stored(demo_db, "SELECT estimate FROM indicators WHERE indicator = ? AND breakdown = ?",
                     [INDICATOR, BREAKDOWN])
    api = [r["estimate"] for r in indicators(demo_db, [INDICATOR], group=BREAKDOWN).records()]
    for cells in (stored, api):
        published = sum(1 for c in cells if (c[0] if isinstance(c, tuple) else c) is not None)
        assert len(cells) > 0 and published / len(cells) >= 0.8, (published, len(cells))


def test_every_city_the_city_surveys_sample_has_estimates(demo_db: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    cities = _sampled_cities()
    assert len(cities) > 0
    est = indicators(demo_db, [INDICATOR], by=["city"], group=BREAKDOWN).records()
    assert cities <= {str(r["city"]) for r in est if r["estimate"] is not None}
    code, out, err, (chart,) = run_drawing(monkeypatch, "compare", "--indicator", INDICATOR, "--by", "city", "--out",
                                           str(tmp_path / "c.png"), "--db", str(demo_db))
    assert code == 0, err
    assert out.strip() == (f"wrote {tmp_path / 'c.png'}: {len(chart.plotted)} estimate(s), "
                           f"{len(chart.suppressed)} suppressed cell(s)")
    names = dict(_stored(demo_db, "SELECT code, name FROM cities"))
    drawn = {cell.split(" · ")[-1] for cell, _, _ in chart.plotted}
    assert {names[c] for c in cities} <= drawn


def _percent(x: object) -> str:
    return f"{100 * float(x):.1f}"


def test_build_ends_with_the_comparison_and_the_next_commands(demo_build: tuple[Path, str]) -> None:
    db, out = demo_build
    lines = out.rstrip("\n").splitlines()
    # expected from the stored indicators: the latest wave of each survey, countries with both groups
    # (the latest year; of two waves with the same latest year, the greater wave name: TIES waves share years)
    newest: dict[str, tuple[int, str]] = {}
    for survey, wave, year in _stored(db, "SELECT survey, wave, max(year) FROM respondents GROUP BY ALL"):
        newest[survey] = max(newest.get(survey, (year, wave)), (year, wave))
    latest = {s: w for s, (_, w) in newest.items()}
    cells: dict[tuple[str, str, str], dict[str, tuple[object, ...]]] = {}
    for r in _stored(db, 'SELECT survey, wave, country, "group", n, estimate, ci_low, ci_high, reliability, gap, '
                         'gap_se, df FROM indicators WHERE indicator = ? AND breakdown = ? AND country <> ? '
                         'AND "group" NOT IN (?, ?)', [INDICATOR, BREAKDOWN, "all", "all", "unknown"]):
        if latest[r[0]] == r[1]:
            cells.setdefault((str(r[0]), str(r[1]), str(r[2])), {})[str(r[3])] = r
    both = sorted(k for k, g in cells.items() if {"native_born", "foreign_born"} <= set(g))
    assert len(both) > 0
    title = next(i for i, line in enumerate(lines) if line.startswith("Employment rate 20-64, native-born vs"))
    assert "SYNTHETIC" in lines[title]
    assert lines[title + 1].split() == ["survey", "wave", "country", "native-born", "%", "foreign-born", "%", "gap",
                                        "(points)", "reliability"]
    table = lines[title + 3:title + 3 + len(both)]
    assert lines[title + 3 + len(both)] == f"({len(both)} rows)"
    for line, key in zip(table, both):
        nat, fb = cells[key]["native_born"], cells[key]["foreign_born"]

        def shown(r: tuple[object, ...]) -> str:
            if r[5] is None:
                return f"{r[8]} (n={r[4]})"
            return f"{_percent(r[5])} [{_percent(r[6])}, {_percent(r[7])}]"

        half = float(t.ppf(0.975, max(float(fb[11]), 1.0))) * float(fb[10]) if fb[9] is not None else 0.0
        gap = (f"{_percent(fb[9])} [{_percent(float(fb[9]) - half)}, {_percent(float(fb[9]) + half)}]"
               if fb[9] is not None else "-")
        assert re.fullmatch(r"\s+".join([*map(re.escape, [*key, shown(nat), shown(fb), gap]), r"\w+"]) + r"\s*",
                            line), (line, key)
    groups: dict[tuple[str, str], set[str]] = {}
    for (survey, wave, _), got in cells.items():
        groups.setdefault((survey, wave), set()).update(got)
    notes = [line.split()[:4] for line in lines if "people only: no gap to show" in line]
    assert notes == [[s, w, "samples", next(iter(g)).replace("_", "-")] for (s, w), g in sorted(groups.items())
                     if len(g) == 1]
    assert len(notes) > 0
    db_arg = str(db)
    assert lines[-4:] == ["next:",
                          f"  harmonise indicators --db {db_arg} --indicator employment_rate --group birthplace",
                          (f"  harmonise compare --db {db_arg} --indicator employment_rate --by city "
                           "--out employment_rate_by_city.png"),
                          f"  harmonise codebook --db {db_arg} --out codebook"]


def test_build_prints_one_line_per_survey_not_per_file(demo_build: tuple[Path, str]) -> None:
    db, out = demo_build
    per_survey = _stored(db, "SELECT survey, count(DISTINCT wave), count(*) FROM respondents GROUP BY survey "
                             "ORDER BY survey")
    built = next(i for i, line in enumerate(out.splitlines()) if line.startswith(f"built {db} ("))
    assert out.splitlines()[:built] == [f"{s}: {w} wave(s), {n:,} synthetic rows" for s, w, n in per_survey]


def test_comparison_of_a_real_file(fr_db: Path) -> None:
    got = comparison(fr_db)
    assert got is not None and not got.synthetic
    assert (got.label, got.ages, got.native, got.other) == ("Employment rate", "20-64", "native_born", "foreign_born")
    assert [(r.survey, r.wave, r.country) for r in got.rows] == [("ess", "8", "FR")]
    row = got.rows[0]
    stored = _stored(fr_db, 'SELECT "group", n, estimate, gap FROM indicators WHERE indicator = ? AND breakdown = ? '
                            'AND country <> ? AND "group" NOT IN (?, ?) ORDER BY "group"',
                     [INDICATOR, BREAKDOWN, "all", "all", "unknown"])
    assert [(g, n, e) for g, n, e, _ in stored] == [("foreign_born", row.other.n, row.other.estimate),
                                                   ("native_born", row.native.n, row.native.estimate)]
    assert row.gap == stored[0][3] and got.one_group == {}


def test_no_comparison_without_indicator_tables() -> None:
    con = duckdb.connect()
    try:
        assert comparison(con) is None
        con.execute("CREATE TABLE indicator_definitions (name VARCHAR, label VARCHAR, age_low INT, age_high INT)")
        con.execute("CREATE TABLE indicator_breakdowns (name VARCHAR, native VARCHAR)")
        assert comparison(con) is None  # no such indicator declared
    finally:
        con.close()


def test_demo_with_options_describing_data_files_is_a_usage_error(tmp_path: Path) -> None:
    """`build --demo --survey ties` assigned every survey's generated files to ties: a warning per other file and
    a TIES-only database; with --wave or --country the build failed on files the user never gave."""
    db = tmp_path / "d.duckdb"
    code, out, err = run("build", "--demo", "--survey", "ties", "--wave", "1", "--db", str(db))
    assert (code, out) == (2, "")
    assert err.endswith("Error: --survey, --wave: describe the files of --data; --demo builds the generated files of "
                        "every survey as they are\n")
    code, _, err = run("build", "--demo", "--country", "FR", "--db", str(db))
    assert code == 2 and err.endswith("Error: --country: describes the files of --data; --demo builds the generated "
                                      "files of every survey as they are\n")
    assert list(tmp_path.iterdir()) == []


def test_the_docs_examples_from_the_demo_hold(demo_db: Path) -> None:
    """What README.md and docs/indicators.md quote from the demo: about 100,000 respondents; a cell whose
    relative CI width and degrees of freedom flag it; EU-MIDIS I's quality flags."""
    (rows,), = _stored(demo_db, "SELECT count(*) FROM respondents")
    assert 90_000 <= int(rows) <= 110_000 and "(about 100,000 respondents)" in (ROOT / "README.md").read_text()
    doc = " ".join((ROOT / "docs" / "indicators.md").read_text(encoding="utf-8").split())
    (n, est, cv, df, low, high, flags), = _stored(demo_db, """
        SELECT n, round(estimate, 3), round(cv, 3), df, round(ci_low, 4), round(ci_high, 4), flags FROM indicators
        WHERE indicator = 'part_time_share' AND survey = 'ess' AND wave = '9' AND country = 'FI'
          AND breakdown = 'migrant_generation' AND "group" = 'second_generation'""")
    assert (n, est, cv, df, low, high, flags) == (56, 0.164, 0.287, 0, 0.0, 0.953, "rel_ci_width>1.3; df<8")
    assert ("ESS 9 Finland, part-time share of the second generation: n = 56, R = 0.164, CV = 0.287, but df = 0 "
            "(its respondents lie in one PSU per stratum; taken as 1) gives [0.0000, 0.9530], flagged "
            "`rel_ci_width>1.3; df<8`") in doc
    (quality,), = _stored(demo_db, """SELECT DISTINCT quality FROM indicators WHERE indicator = 'employment_rate'
                                     AND survey = 'eumidis' AND wave = 'I' AND country = 'FR' AND breakdown = 'total'""")
    assert f"Example (demo, EU-MIDIS I, employment rate): `{quality}`" in doc


def test_the_demo_respondents_hold_together(demo_db: Path) -> None:
    """What the fixture generator drew but the surveys would not show: a LOCALMULTIDEM Budapest respondent born
    abroad in Hungary (an origin the survey's country list lacks took any code, the host's too); home languages
    drawn evenly from all 486 ESS codes (Esperanto and Yiddish the most common in some rounds); half the ESS
    workers who are not self-employed in their family's business (each code of a value equally likely)."""
    assert _stored(demo_db, "SELECT count(*) FROM respondents WHERE NOT born_in_country "
                            "AND country_of_birth = country") == [(0,)]
    (native, host), = _stored(demo_db, """
        SELECT count(*), count(*) FILTER (WHERE home_language = l.language) FROM respondents r
        JOIN host_languages l ON l.country = r.country AND l.position = 1
        WHERE survey = 'ess' AND born_in_country AND father_born_in_country AND mother_born_in_country
          AND home_language IS NOT NULL""")
    assert native > 40_000 and host == native
    (workers, family), = _stored(demo_db, """
        SELECT count(*), count(*) FILTER (WHERE temporary_contract_missing = 'not_applicable') FROM respondents
        WHERE survey = 'ess' AND labour_status = 'employed' AND NOT self_employed""")
    assert 0.05 < family / workers < 0.15
