"""What a long-lived process keeps between validations (the validation server): each crosswalk's static
issues by the content they follow from, discovery's reads of a file and a small file's rows by its bytes.
Kept or not, a validation gives the same issues; an edit is always seen."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyreadstat
import pytest

from harmonise import api, checks, discover
from harmonise.checks import static_issues
from harmonise.errors import InputError
from harmonise.readers import prefetch
from harmonise.spec.project import load_project
from tests.conftest import ROOT


def _copy_project(dst: Path) -> Path:
    for part in ("mappings", "surveys"):
        shutil.copytree(ROOT / part, dst / part)
    return dst


def _texts(issues: list[object]) -> list[tuple[object, ...]]:
    return [(i.severity, i.code, i.file, i.line, i.message) for i in issues]  # type: ignore[attr-defined]


def test_static_issues_follow_every_edit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checks, "_CHECKED", {})
    root = _copy_project(tmp_path / "p")
    clean = _texts(static_issues(load_project(root)))
    assert _texts(static_issues(load_project(root))) == clean  # kept: the same issues
    ties = root / "mappings" / "ties.yaml"
    text = ties.read_text(encoding="utf-8")
    first_source = next(line for line in text.splitlines() if line.strip().startswith("source:"))
    ties.write_text(text.replace(first_source, first_source.split(":")[0] + ": no_such_variable_xyz", 1),
                    encoding="utf-8")
    edited = _texts(static_issues(load_project(root)))
    monkeypatch.setattr(checks, "_CHECKED", {})
    assert edited == _texts(static_issues(load_project(root)))  # as a process that kept nothing finds
    assert any("no_such_variable_xyz" in str(t[4]) for t in edited) and edited != clean
    ties.write_text(text, encoding="utf-8")
    assert _texts(static_issues(load_project(root))) == clean
    codebook = min((root / "surveys" / "ties").glob("codebook*.yaml"))  # a declared codebook edited
    codebook.write_text(codebook.read_text(encoding="utf-8").replace("label:", "labels_typo:", 1), encoding="utf-8")
    changed = _texts(static_issues(load_project(root)))
    monkeypatch.setattr(checks, "_CHECKED", {})
    assert changed == _texts(static_issues(load_project(root))) and changed != clean


def _validate(data: Path) -> list[tuple[object, ...]]:
    result = api.validate(ROOT, data=[data], jobs=1)
    return _texts(result.issues)


def test_kept_reads_give_what_reading_gives_and_a_changed_file_is_read_again(
        tmp_path: Path, fixtures_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = min((fixtures_dir / "ties").glob("*.sav"))
    data = tmp_path / source.name
    shutil.copyfile(source, data)
    fresh = _validate(data)
    monkeypatch.setattr(discover, "_REMEMBERED", {})
    monkeypatch.setattr(prefetch, "_FRAMES", {})
    assert _validate(data) == fresh
    assert len(discover._REMEMBERED or {}) == 1 and len(prefetch._FRAMES or {}) == 1
    assert _validate(data) == fresh  # from what was kept
    df, meta = pyreadstat.read_sav(str(source), user_missing=True)
    code = next(c for c in df.columns if df[c].dtype.kind == "f" and meta.variable_value_labels.get(c))
    df[code] = 987654.0  # a code no label or rule knows
    pyreadstat.write_sav(df, str(data), column_labels=meta.column_labels,
                         variable_value_labels=meta.variable_value_labels, missing_ranges=meta.missing_ranges)
    kept_then = _validate(data)
    monkeypatch.setattr(discover, "_REMEMBERED", None)
    monkeypatch.setattr(prefetch, "_FRAMES", None)
    assert kept_then == _validate(data) != fresh


def test_kept_reads_are_not_those_of_the_same_bytes_under_another_extension(
        tmp_path: Path, fixtures_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = min((fixtures_dir / "ties").glob("*.sav"))
    data = tmp_path / source.name
    shutil.copyfile(source, data)
    monkeypatch.setattr(discover, "_REMEMBERED", {})
    monkeypatch.setattr(prefetch, "_FRAMES", {})
    _validate(data)
    renamed = data.rename(data.with_suffix(".dta"))
    with pytest.raises(InputError, match="the content is a SAV file but the extension says DTA"):
        api.validate(ROOT, data=[renamed], jobs=1)


def test_a_memo_keeps_the_newest_entries_up_to_its_limit() -> None:
    from harmonise.kept import keep

    memo: dict[str, int] = {}
    for i, k in enumerate("abcd"):
        assert keep(memo, k, i, 3) == i
    assert memo == {"b": 1, "c": 2, "d": 3}
    keep(memo, "c", 9, 3)  # stored again: the newest, nothing else dropped
    assert list(memo.items()) == [("b", 1), ("d", 3), ("c", 9)]
