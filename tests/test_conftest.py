"""The suite's helpers follow the mappings: a wave added to a project copy reaches them without a test edit."""

from __future__ import annotations

from pathlib import Path

from harmonise.fixtures import generate
from harmonise.spec.descriptor import load_descriptor
from tests.conftest import ROOT, add_wave, declared_waves, run, waves_of
from tests.test_reports_ddi import wave_count


def test_a_wave_added_to_a_copy_of_ties_reaches_the_helpers(project: Path, tmp_path: Path) -> None:
    before = declared_waves(project)
    assert before == declared_waves(ROOT)
    assert ("ties", "2017") not in before
    add_wave(project, "ties", "2007", "2017")
    after = declared_waves(project)
    at = before.index(("ties", "2007")) + 1
    assert after == before[:at] + (("ties", "2017"),) + before[at:]
    assert waves_of("ties", project) == ["2007", "2017"]
    assert waves_of("ess", project) == waves_of("ess")
    assert wave_count(project) == len(after) == wave_count() + 1
    assert [w.id for w in load_descriptor(project / "surveys" / "ties" / "survey.yaml").waves] == ["2007", "2017"]
    # the copy is a valid project whose fixtures hold the new wave
    assert run("validate", project=project) == (0, "ok: 0 error(s), 0 warning(s)\n", "")
    files = generate(project, tmp_path / "data", survey="ties", rows=20, editions=False)
    assert [p.name for p in files] == ["TIES_2007.sav", "TIES_2017.sav"]


def test_the_repository_waves_are_read_once_and_a_copy_afresh(project: Path) -> None:
    assert declared_waves() is declared_waves(ROOT)
    assert declared_waves(project) == declared_waves() and declared_waves(project) is not declared_waves()
