"""The comparison chart as a report carries it: legend, names, caption, no overlapping artists."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_hex
from matplotlib.transforms import Bbox

from harmonise import compare, connect
from harmonise.reports.chart import Chart
from tests.conftest import run, run_drawing


def extents(chart: Chart) -> dict[str, Bbox]:
    fig = chart.figure
    assert fig is not None
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)  # lay out as when saved
    ax = fig.axes[0]
    return {"axes": ax.get_tightbbox(renderer), "plot": ax.get_window_extent(renderer),
            "legend": fig.legends[0].get_window_extent(renderer),
            "title": fig._suptitle.get_window_extent(renderer),  # type: ignore[union-attr]
            "caption": fig._supxlabel.get_window_extent(renderer)}  # type: ignore[union-attr]


def test_chart_legend_caption_and_layout(small_demo_db: Path, tmp_path: Path) -> None:
    chart = compare(small_demo_db, "employment_rate", tmp_path / "c.png", by=["sex"], group="birthplace")
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    fig = chart.figure
    assert fig is not None
    legend = fig.legends[0]
    handles = legend.legend_handles
    # one handle per series, in order, labelled by name (not code), filled like a reliable estimate
    groups = {g for _, g, _ in chart.plotted}
    names = {"all": "All with a known group", "foreign_born": "Foreign-born", "native_born": "Native-born"}
    assert [t.get_text() for t in legend.get_texts()] == chart.series == [names[g] for g in sorted(
        groups, key=lambda g: (g != "all", g))]
    assert {"all", "foreign_born", "native_born"} <= groups
    colours = [to_hex(h.get_color()) for h in handles]  # type: ignore[union-attr]
    assert all(to_hex(h.get_markerfacecolor()) == c for h, c in zip(handles, colours))  # type: ignore[union-attr]
    drawn = {to_hex(c.lines[0].get_color()) for c in fig.axes[0].containers}  # type: ignore[attr-defined]
    assert drawn <= set(colours) and len(drawn) == len(colours)
    # the caption names every survey and wave drawn, the weight, the design and the rule in words
    con = connect(small_demo_db)
    try:
        acronyms = dict(con.execute("SELECT survey, acronym FROM survey_sampling").fetchall())
    finally:
        con.close()
    for cell, _, _ in chart.plotted + [(c, g, 0.0) for c, g, _ in chart.suppressed]:
        source = cell.split(" · ")[0]
        assert source in chart.caption
    assert any(f"{acronyms['ess']} 10" in c for c, _, _ in chart.plotted + chart.suppressed)  # type: ignore[operator]
    assert "each survey and wave estimated separately" in chart.caption
    assert "Weight: analysis weight" in chart.caption and "Design: " in chart.caption
    assert "lonely PSUs: adjust" in chart.caption
    assert "fewer than 20 respondents" in chart.caption and "derived from the shown ones" in chart.caption
    assert "approximate: labour_status" in chart.caption  # quality flags reach the chart
    assert fig.axes[0].get_xlabel() == "Percent, with 95% confidence interval"
    # nothing overlaps: legend and caption lie outside the plot, the title above it
    box = extents(chart)
    assert not box["legend"].overlaps(box["plot"]) and not box["legend"].overlaps(box["title"])
    assert not box["caption"].overlaps(box["axes"]) and not box["title"].overlaps(box["axes"])
    renderer = FigureCanvasAgg(fig).get_renderer()
    notes = [t.get_window_extent(renderer) for t in fig.axes[0].texts]
    assert all(not a.overlaps(b) for i, a in enumerate(notes) for b in notes[i + 1:])


def test_synthetic_databases_say_so(fr_db: Path, tmp_path: Path) -> None:
    chart = compare(fr_db, "trust_parliament", tmp_path / "real.svg", by=["sex"], group="birthplace")
    assert "SYNTHETIC" not in chart.caption and "Source: ESS 8," in chart.caption
    assert "Mean, with 95% confidence interval" == chart.figure.axes[0].get_xlabel()  # type: ignore[union-attr]
    marked = tmp_path / "marked.duckdb"
    shutil.copy(fr_db, marked)
    con = duckdb.connect(str(marked))
    con.execute("INSERT INTO build_info VALUES ('synthetic', 'true')")
    con.close()
    chart = compare(marked, "trust_parliament", tmp_path / "synthetic.svg", by=["sex"], group="birthplace")
    assert chart.caption.startswith("SYNTHETIC DATA (demo build)")


def test_pooled_chart_states_the_method(small_demo_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, err, (chart,) = run_drawing(monkeypatch, "compare", "--indicator", "employment_rate", "--by", "country",
                                           "--group", "birthplace", "--pool", "--out", str(tmp_path / "p.pdf"),
                                           "--db", str(small_demo_db))
    assert code == 0, err
    assert out == (f"wrote {tmp_path / 'p.pdf'}: {len(chart.plotted)} estimate(s), {len(chart.suppressed)} "
                   "suppressed cell(s)\n")
    assert (tmp_path / "p.pdf").read_bytes()[:5] == b"%PDF-"
    assert "pooled over the survey-waves" in chart.caption and \
        "rescaled within each survey-wave and country" in chart.caption
    assert not any(" · " in c for c, _, _ in chart.plotted)  # pooled cells are countries, not survey-waves
    by_survey = compare(small_demo_db, "employment_rate", tmp_path / "s.png", by=["survey", "country"], pool=True)
    cells = {c for c, _, _ in by_survey.plotted + by_survey.suppressed}  # type: ignore[operator]
    assert "ESS · France" in cells and "EVS · France" in cells  # pooled over waves only: one row per survey
    assert not any(c.endswith(" · All") for c in cells)  # pooled by country: no margin over countries
    surveys = compare(small_demo_db, "employment_rate", tmp_path / "t.png", by=["survey"], pool=True)
    assert {"ESS", "EVS"} <= {c for c, _, _ in surveys.plotted + surveys.suppressed}  # type: ignore[operator]
    assert "rescaled within each survey-wave to sum" in surveys.caption


@pytest.mark.parametrize("name", ["employment_rate"])
def test_unknown_indicator_cannot_be_drawn(fr_db: Path, tmp_path: Path, name: str) -> None:
    code, _, err = run("compare", "--indicator", name + "x", "--out", str(tmp_path / "x.png"), "--db", str(fr_db))
    assert code == 2 and err.startswith(f"error: unknown indicator(s) {name}x; known: ")


def test_an_indicator_without_estimates_says_why_there_is_nothing_to_draw(fr_db: Path, tmp_path: Path) -> None:
    """ESS8 France does not ask the residence status: "nothing to draw" said no more; `indicators` says why."""
    code, _, err = run("compare", "--indicator", "long_term_residence_share", "--out", str(tmp_path / "x.png"),
                       "--db", str(fr_db))
    assert (code, err) == (2, ("error: no estimates for 'long_term_residence_share' in this grouping (ess 8: none of "
                              "its respondents is in the indicators' populations (ages, the question asked)); "
                              "nothing to draw\n"))
    assert not (tmp_path / "x.png").exists()


def test_a_chart_never_overwrites_a_file_harmonise_did_not_draw(fr_db: Path, tmp_path: Path) -> None:
    """`compare --out thesis.pdf` replaced any file, and wrote through links; `schema --out` too."""
    thesis = tmp_path / "thesis.pdf"
    thesis.write_text("my thesis")
    args = ("compare", "--indicator", "employment_rate", "--db", str(fr_db), "--out")
    code, out, err = run(*args, str(thesis))
    assert (code, out) == (2, "") and err == f"error: {thesis} exists and harmonise did not write it; pass --force to overwrite it\n"
    assert thesis.read_text() == "my thesis"
    chart = tmp_path / "c.pdf"
    assert run(*args, str(chart))[0] == 0
    assert run(*args, str(chart))[0] == 0  # its own chart is drawn again
    link = tmp_path / "l.png"
    link.symlink_to(thesis)
    code, _, err = run(*args, str(link))
    assert code == 2 and err == f"error: {link} is a link (to {thesis}); pass --force to replace the link itself\n"
    assert run(*args, str(link), "--force")[0] == 0
    assert thesis.read_text() == "my thesis" and not link.is_symlink()
    code, _, err = run(*args, str(tmp_path / "c.jpg"))
    assert code == 2 and err == f"error: --out {tmp_path / 'c.jpg'}: a chart is written as .png, .svg, .pdf (by the file's extension)\n"
    notes = tmp_path / "notes.json"
    notes.write_text("{}")
    code, _, err = run("schema", "--json-schema", "--out", str(notes))
    assert code == 2 and notes.read_text() == "{}"
    assert run("schema", "--json-schema", "--out", str(tmp_path / "s.json"))[0] == 0
    assert run("schema", "--json-schema", "--out", str(tmp_path / "s.json"))[0] == 0  # its own schema


def test_a_chart_of_several_indicators_is_asked_for_one(fr_db: Path, tmp_path: Path) -> None:
    """`--indicator a,b` said "unknown indicator(s) a,b"."""
    code, _, err = run("compare", "--indicator", "employment_rate,activity_rate", "--out", str(tmp_path / "x.png"),
                       "--db", str(fr_db))
    assert code == 2 and err == ("error: --indicator employment_rate,activity_rate: a chart draws one indicator; give "
                                 "one, or estimate several with `harmonise indicators`\n")


def test_survey_waves_without_the_by_variable_show_their_total_once(small_demo_db: Path, tmp_path: Path) -> None:
    """By city, every survey-wave without one (EVS; ESS rounds whose regions name no city) drew an 'All' and an
    'Unknown' row with the same values (an audit of the researcher's workflow); now its total only, and the
    survey-waves with cities as before."""
    chart = compare(small_demo_db, "employment_rate", tmp_path / "city.png", by=["city"], group=None)
    cells = {c for c, _, _ in chart.plotted} | {c for c, _, _ in chart.suppressed}
    wave = {c: c.rsplit(" · ", 1) for c in cells}
    with_city = {w for w, v in wave.values() if v not in ("All", "Unknown")}
    assert with_city and any(w.startswith("EVS ") for w, _ in wave.values())
    assert all(v != "Unknown" or w in with_city for w, v in wave.values())
    assert {v for w, v in wave.values() if w.startswith("EVS ")} == {"All"}


def test_dollar_signs_in_labels_are_text_not_tex(fr_db: Path, tmp_path: Path) -> None:
    """A label is drawn as written: '$' used to start matplotlib's TeX math, so '$\\frac{' stopped the chart
    ('cannot write the chart (... ParseSyntaxException ...)', exit 2) and 'a $5 and $10 b' came out in italics."""
    from harmonise.reports.chart import draw
    from harmonise.reports.indicators import indicators

    est = indicators(fr_db, ["employment_rate"], ["sex"], "birthplace")
    label = "Income $\\frac{1}{$ between $5 and $10"
    out = tmp_path / "dollars.png"
    chart = draw(est, "employment_rate", ["sex"], out, label=label)
    assert out.stat().st_size > 0
    title = chart.figure._suptitle  # type: ignore[union-attr]
    assert title.get_text().startswith(f"{label}, ages 20-64") and not title._preprocess_math(title.get_text())[1]


def test_a_chart_that_fails_while_written_leaves_the_previous_one(fr_db: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The chart was written in place: a full disk (or a Ctrl-C) while matplotlib wrote it left a truncated
    image where the previous chart was."""
    from matplotlib.figure import Figure

    chart = tmp_path / "c.png"
    args = ("compare", "--indicator", "employment_rate", "--db", str(fr_db), "--out", str(chart))
    assert run(*args)[0] == 0
    before = chart.read_bytes()

    def full(self: Figure, fname: Path, **kwargs: object) -> None:
        Path(fname).write_bytes(b"\x89PNG half")
        raise OSError(28, "No space left on device", str(fname))

    monkeypatch.setattr(Figure, "savefig", full)
    assert run(*args) == (2, "", f"error: {chart}: cannot write the chart (No space left on device)\n")
    assert chart.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["c.png"]
